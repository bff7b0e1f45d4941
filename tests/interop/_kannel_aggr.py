"""Kannel (bearerbox + smsbox) as an aggregator of the A2P proxy, for tests/interop.

The config is test_kannel_esme's (core, smsbox, sendsms-user, sms-service) with its `group = smsc`
replaced by one SMPP transceiver bind per proxy account; each bind takes only the messages sent
with `smsc=<its account>` on the sendsms URL (allowed-smsc-id), so a test picks the account.
"""

from __future__ import annotations

import asyncio
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from _procs import Peer, Peers, await_port, free_ports, require_binary, wait_for
from test_kannel_esme import DlrListener, _http_get, _read, kannel_conf

SENDSMS_USER, SENDSMS_PASSWORD = "tester", "foobar"  # kannel_conf's sendsms-user
# Kannel's access log: the ids it saw in submit_sm_resp, and the receipts it matched to them
SENT = re.compile(r"Sent SMS \[SMSC:(\S+)\] .*?\[FID:(\w*)\] .*?\[to:(\S*)\]")
REJECTED = re.compile(r"REJECTED Send SMS \[SMSC:(\S+)\] .*?\[from:(\S*)\] \[to:(\S*)\]")
RECEIVED_DLR = re.compile(
    r"Receive DLR \[SMSC:(\S+)\] .*?\[FID:(\w*)\] .*?\[flags:-1:-1:-1:-1:(\d+)\] \[msg:\d+:(.*?)\]"
)

RESP_DUMP = re.compile(r"type_name: submit_sm_resp\n(.*?)SMPP PDU dump ends", re.DOTALL)
DUMP_DATA = re.compile(r"data: ((?:[0-9a-f]{2} )+)")
DLR_LOOKUP = re.compile(r"Looking for DLR smsc=\S+, ts=(\w+), dst=\S+, type=(\d+)")


def smsc_group(tmp: Path, *, port: int, account: str, password: str, extra: str = "") -> str:
    return f"""\
group = smsc
smsc = smpp
smsc-id = {account}
allowed-smsc-id = {account}
host = 127.0.0.1
port = {port}
transceiver-mode = true
smsc-username = {account}
smsc-password = {password}
system-type = ""
max-pending-submits = 50
enquire-link-interval = 5
reconnect-delay = 1
log-file = "{tmp}/smsc-{account}.log"
log-level = 0
{extra}
"""


def aggregator_conf(
    tmp: Path,
    *,
    proxy_port: int,
    accounts: dict[str, str],
    admin_port: int,
    smsbox_port: int,
    sendsms_port: int,
    extra: str = "",
) -> str:
    """kannel_conf with one smsc group per proxy account (system_id -> password); `extra`:
    more keys for each smsc group."""
    base = kannel_conf(tmp, smsc_port=proxy_port, admin_port=admin_port,
                       smsbox_port=smsbox_port, sendsms_port=sendsms_port)  # fmt: skip
    head, rest = base.split("group = smsc\n", 1)
    _, tail = rest.split("group = smsbox\n", 1)
    groups = "".join(
        smsc_group(tmp, port=proxy_port, account=a, password=p, extra=extra)
        for a, p in accounts.items()
    )
    return head + groups + "group = smsbox\n" + tail


@dataclass
class KannelAggregator:
    """A running Kannel bound to the proxy; `sendsms` submits through its HTTP interface with
    DLR callbacks to `dlr` (ref, type %d, smsc %i, foreign id %F, internal id %I, reply %A)."""

    tmp: Path
    sendsms_port: int
    dlr: DlrListener
    bearerbox: Peer
    smsbox: Peer

    def sendsms(self, account: str, ref: str, source: str, dest: str, text: str,
                **extra: str) -> tuple[int, str]:  # fmt: skip
        dlr_url = (
            f"http://127.0.0.1:{self.dlr.port}/dlr?ref={ref}&type=%d&smsc=%i&fid=%F&iid=%I&reply=%A"
        )
        query = urllib.parse.urlencode({
            "username": SENDSMS_USER, "password": SENDSMS_PASSWORD, "smsc": account,
            "from": source, "to": dest, "text": text, "dlr-mask": "31", "dlr-url": dlr_url,
            **extra,
        })  # fmt: skip
        return _http_get(f"http://127.0.0.1:{self.sendsms_port}/cgi-bin/sendsms?{query}")

    async def send(self, account: str, ref: str, source: str, dest: str, text: str,
                   **extra: str) -> None:  # fmt: skip
        status, body = await asyncio.to_thread(
            self.sendsms, account, ref, source, dest, text, **extra
        )
        assert status == 202 and "Accepted" in body, (ref, status, body)

    def access_log(self) -> str:
        return _read(self.tmp / "bearerbox-access.log")

    def sent(self) -> list[tuple[str, str, str]]:
        """(smsc-id, the id from submit_sm_resp, to) of every submit Kannel saw accepted."""
        return [m.groups() for m in SENT.finditer(self.access_log())]  # type: ignore[misc]

    def receipts(self) -> list[tuple[str, str, int, str]]:
        """(smsc-id, the id Kannel matched, DLR type, the receipt's text) of every DLR."""
        return [
            (smsc, fid, int(kind), text)
            for smsc, fid, kind, text in RECEIVED_DLR.findall(self.access_log())
        ]

    def smpp_log(self, account: str) -> str:
        return _read(self.tmp / f"smsc-{account}.log")

    def resp_ids(self, account: str) -> list[str]:
        """The message_id of every submit_sm_resp on the account's bind, from Kannel's PDU
        dumps (log-level 0), in the order they came."""
        ids = []
        for block in RESP_DUMP.findall(self.smpp_log(account)):
            octets = "".join(DUMP_DATA.findall(block))
            ids.append(bytes.fromhex(octets.replace(" ", "")).decode("ascii"))
        return ids

    def dlr_lookups(self, account: str) -> list[tuple[str, int]]:
        """(id, DLR type) of every receipt Kannel looked up in its DLR store."""
        return [(ts, int(kind)) for ts, kind in DLR_LOOKUP.findall(self.smpp_log(account))]

    def hits(self, ref: str, kind: str | None = None) -> list[dict[str, str]]:
        return [h for h in self.dlr.hits if h.get("ref") == ref and kind in (None, h.get("type"))]


async def start_kannel(
    tmp: Path,
    peers: Peers,
    proxy_port: int,
    accounts: dict[str, str],
    dlr: DlrListener,
    bound: Callable[[], bool],
    extra: str = "",
) -> KannelAggregator:
    """bearerbox and smsbox started, and `bound()` true (every account's bind up, as the proxy
    sees it)."""
    bearerbox = require_binary("bearerbox", package="kannel", candidates=["/usr/sbin/bearerbox"])
    smsbox = require_binary("smsbox", package="kannel", candidates=["/usr/sbin/smsbox"])
    admin_port, smsbox_port, sendsms_port = free_ports(3)
    conf = tmp / "kannel.conf"
    conf.write_text(aggregator_conf(tmp, proxy_port=proxy_port, accounts=accounts,
                                    admin_port=admin_port, smsbox_port=smsbox_port,
                                    sendsms_port=sendsms_port, extra=extra))  # fmt: skip
    bb = peers.start("bearerbox", [bearerbox, "-v", "1", str(conf)])
    await await_port(smsbox_port, peer=bb)
    sb = peers.start("smsbox", [smsbox, "-v", "1", str(conf)])
    await await_port(sendsms_port, peer=sb)

    await wait_for(bound, timeout=10, what=f"Kannel's binds to the proxy as {list(accounts)}",
                   peers=peers)  # fmt: skip
    return KannelAggregator(tmp, sendsms_port, dlr, bb, sb)
