// node `smpp` 0.5.1 as an SMSC (smpp.createServer) for interop tests.
// usage: node smsc.js PORT
// Accounts: system_id "fg", password "fgpass". A submit_sm to a destination starting with 401
// is answered with the vendor status 0x401; one to 9999 is answered, then followed by an
// alert_notification and an unbind from node; others get message_id node-N. After the first
// accepted submit_sm it sends two deliver_sm (MO) to the ESME and an enquire_link.
// Prints one JSON object per line (listening, bind, submit_sm, *_resp statuses, unbind).
'use strict';
const smpp = require('smpp');

const port = Number(process.argv[2]);
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
let ids = 0;

const server = smpp.createServer((session) => {
  let sentMo = false;
  session.on('error', (e) => out({ event: 'session_error', message: String(e) }));
  session.on('bind_transceiver', (pdu) => {
    let status = 0;
    if (pdu.system_id !== 'fg') status = smpp.ESME_RINVSYSID;
    else if (pdu.password !== 'fgpass') status = smpp.ESME_RINVPASWD;
    out({ event: 'bind', system_id: pdu.system_id, status });
    session.send(pdu.response({ command_status: status, system_id: 'node-smsc' }));
    if (status !== 0) setTimeout(() => session.close(), 100);
  });
  session.on('enquire_link', (pdu) => session.send(pdu.response()));
  session.on('unbind', (pdu) => {
    out({ event: 'unbind' });
    session.send(pdu.response());
    session.close();
  });
  session.on('submit_sm', (pdu) => {
    const sm = pdu.short_message || {};
    out({
      event: 'submit_sm', destination_addr: pdu.destination_addr, data_coding: pdu.data_coding,
      esm_class: pdu.esm_class, text: typeof sm === 'string' ? sm : sm.message,
    });
    if (pdu.destination_addr.startsWith('401')) {
      session.send(pdu.response({ command_status: 0x401 }));
      return;
    }
    if (pdu.destination_addr === '9999') {
      // An SMSC-side end: alert_notification (no response exists), then unbind.
      session.send(pdu.response({ message_id: 'bye' }));
      session.alert_notification({
        source_addr_ton: 1, source_addr_npi: 1, source_addr: '4900001',
        esme_addr_ton: 0, esme_addr_npi: 0, esme_addr: 'fg', ms_availability_status: 0,
      });
      session.unbind((resp) => {
        out({ event: 'unbind_resp', status: resp.command_status });
        session.close();
      });
      return;
    }
    ids += 1;
    session.send(pdu.response({ message_id: 'node-' + ids }));
    if (sentMo) return;
    sentMo = true;
    const mo = [
      { ref: 'mo-ok', text: 'Сәлем, бұл MO' },
      { ref: 'mo-reject', text: 'please reject me' },
    ];
    for (const m of mo) {
      session.deliver_sm({
        source_addr_ton: 1, source_addr_npi: 1, source_addr: '77017770001',
        dest_addr_ton: 0, dest_addr_npi: 1, destination_addr: '1414',
        data_coding: 8, short_message: Buffer.from(m.text, 'utf16le').swap16(),
      }, (resp) => out({ event: 'deliver_sm_resp', ref: m.ref, status: resp.command_status }));
    }
    session.enquire_link((resp) => out({ event: 'enquire_link_resp', status: resp.command_status }));
  });
});

server.on('error', (e) => { out({ event: 'server_error', message: String(e) }); process.exit(3); });
server.listen(port, '127.0.0.1', () => out({ event: 'listening', port }));
