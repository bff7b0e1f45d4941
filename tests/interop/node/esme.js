// node `smpp` 0.5.1 as an ESME (transceiver) for interop tests.
// usage: node esme.js HOST PORT SYSTEM_ID PASSWORD SOURCE DEST EXPECT_DELIVERS
// Prints one JSON object per line: bind_resp, submit_sm (as encoded), submit_sm_resp,
// deliver_sm (as node decoded it; answered with status 0), unbind_resp, done.
'use strict';
const smpp = require('smpp');

const [host, port, systemId, password, source, dest, expectDelivers] = process.argv.slice(2);
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const KAZAKH = 'Сіздің картаңыз бұғатталды';
const RUSSIAN = 'Ваша карта заблокирована';

const session = smpp.connect({ host, port: Number(port) });
let delivers = 0;
let resps = 0;
const submits = [
  // 1. a JS string, data_coding left to node (it picks UCS2 for Cyrillic)
  { ref: 'auto-cyrillic', short_message: RUSSIAN },
  // 2. explicit UCS2: data_coding 8 and a UTF-16BE Buffer
  { ref: 'ucs2-buffer', data_coding: 8, short_message: Buffer.from(KAZAKH, 'utf16le').swap16() },
  // 3. a GSM-only string, data_coding left to node (0.5.1 sends GSM 03.38 bytes as data_coding 1)
  { ref: 'auto-gsm', short_message: 'Card @ 100$ blocked_now' },
];

function finish() {
  session.unbind((pdu) => {
    out({ event: 'unbind_resp', status: pdu.command_status });
    out({ event: 'done' });
    session.close();
  });
}

function maybeFinish() {
  if (resps === submits.length && delivers >= Number(expectDelivers)) finish();
}

session.on('error', (e) => { out({ event: 'error', message: String(e) }); process.exit(3); });
session.on('enquire_link', (pdu) => session.send(pdu.response()));
session.on('deliver_sm', (pdu) => {
  delivers += 1;
  const sm = pdu.short_message || {};
  out({
    event: 'deliver_sm',
    source_addr: pdu.source_addr,
    destination_addr: pdu.destination_addr,
    esm_class: pdu.esm_class,
    data_coding: pdu.data_coding,
    text: typeof sm === 'string' ? sm : sm.message,
    receipted_message_id: pdu.receipted_message_id || null,
    message_state: pdu.message_state === undefined ? null : pdu.message_state,
  });
  session.send(pdu.response());
  maybeFinish();
});

session.on('connect', () => {
  session.bind_transceiver({ system_id: systemId, password }, (pdu) => {
    out({ event: 'bind_resp', status: pdu.command_status, system_id: pdu.system_id || '' });
    if (pdu.command_status !== 0) { session.close(); return; }
    for (const s of submits) {
      const fields = {
        source_addr_ton: 1, source_addr_npi: 1, source_addr: source,
        dest_addr_ton: 1, dest_addr_npi: 1, destination_addr: dest,
        registered_delivery: 1, short_message: s.short_message,
      };
      if (s.data_coding !== undefined) fields.data_coding = s.data_coding;
      const pdu = new smpp.PDU('submit_sm', fields);
      const raw = pdu.toBuffer(); // encodes: data_coding is now what goes on the wire
      out({ event: 'submit_sm', ref: s.ref, data_coding: pdu.data_coding,
            pdu_hex: raw.toString('hex') });
      session.send(pdu, (resp) => {
        resps += 1;
        out({ event: 'submit_sm_resp', ref: s.ref, status: resp.command_status,
              message_id: resp.message_id || '' });
        maybeFinish();
      });
    }
  });
});

setTimeout(() => { out({ event: 'timeout', delivers, resps }); process.exit(2); }, 15000).unref();
