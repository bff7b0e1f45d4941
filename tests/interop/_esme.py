"""A recording `LinkHandler` for the project's own ESME (EsmeClient) in interop tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from smsc.link import Link
from smsc.pdu import DeliverSm, Pdu
from smsc.session import BindType


@dataclass
class Recorder:
    """Records every request the peer sends; answers deliver_sm / data_sm with `status`
    (or the status `status_for(pdu)` returns). alert_notification, which has no response,
    is recorded in `notifications`."""

    status: int = 0
    status_for: Callable[[Pdu], int] | None = None
    requests: list[Pdu] = field(default_factory=list)
    notifications: list[Pdu] = field(default_factory=list)
    closed: list[tuple[str, bool]] = field(default_factory=list)

    @property
    def delivers(self) -> list[DeliverSm]:
        return [p for p in self.requests if isinstance(p, DeliverSm)]

    def on_request(self, link: Link, pdu: Pdu) -> None:
        self.requests.append(pdu)
        status = self.status if self.status_for is None else self.status_for(pdu)
        link.respond(pdu.response(status=status))

    def on_notification(self, link: Link, pdu: Pdu) -> None:
        """A request without response (alert_notification): recorded, never answered."""
        self.notifications.append(pdu)

    def on_bind(self, link: Link, pdu: Pdu, bind_type: BindType) -> None:  # ESME: never called
        raise AssertionError("an ESME link got a bind request")

    def on_closed(self, link: Link, reason: str, clean: bool) -> None:
        self.closed.append((reason, clean))
