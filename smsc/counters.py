"""Plain PDU counters for monitoring (read by gateway.metrics at scrape time; no dependency).

One `PduCounters` per bind outlives its successive links: the supervisor hands it to each
`Link`, which counts the PDUs the application sends and receives by (command_id, status).
Keys are the raw integers; whoever exposes them bounds the label values (unknown ids and
statuses become one "other")."""

from __future__ import annotations

from dataclasses import dataclass, field

from smsc.pdu import Pdu


@dataclass
class PduCounters:
    received: dict[tuple[int, int], int] = field(default_factory=dict)  # (command_id, status)
    sent: dict[tuple[int, int], int] = field(default_factory=dict)

    def count_in(self, pdu: Pdu) -> None:
        key = (pdu.command_id, pdu.status)
        self.received[key] = self.received.get(key, 0) + 1

    def count_out(self, pdu: Pdu) -> None:
        key = (pdu.command_id, pdu.status)
        self.sent[key] = self.sent.get(key, 0) + 1
