"""What a probe modem reports, as the rest of fraudgate sees it (driver output, detector input).

The driver (`gsm_probe.modem`) turns unsolicited result codes into these; the test-call matcher
and the probe manager consume them. Times are epoch seconds (UTC), taken when the event was read.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class IncomingCall:
    """RING / +CRING with the caller line identity of +CLIP (TS 27.007 §7.6).

    `number` is as the network presented it ("" when withheld or unavailable); `ton` is the
    type of address octet (145 = international, 129 = unknown/national); `validity` is the +CLIP
    CLI validity (0 valid, 1 withheld by the caller, 2 not available: interworking or a network
    that does not pass it)."""

    probe: str
    number: str
    ton: int = 129
    validity: int = 0
    at: float = 0.0


@dataclass(frozen=True, slots=True)
class SmsReceived:
    """A whole SMS read from the probe (+CMT, or +CMTI then +CMGR), parts already joined.

    `originator_ton` 5 marks an alphanumeric sender (`originator` is then its text)."""

    probe: str
    originator: str
    originator_ton: int
    text: str
    smsc: str = ""
    sent_at: float | None = None  # the SMSC time stamp (TP-SCTS), when there is one
    parts: int = 1  # parts received
    at: float = 0.0
    total: int = 1  # parts announced by the UDH: parts < total when handed on incomplete

    @property
    def complete(self) -> bool:
        return self.parts >= self.total


@dataclass(frozen=True, slots=True)
class ProbeHealth:
    """A probe's state as the manager publishes it (retained MQTT status)."""

    probe: str
    connected: bool
    registered: bool = False
    registration: int = 0  # +CREG <stat>: 1 home, 5 roaming, 2 searching, 3 denied, 0 not
    signal_dbm: int | None = None  # from +CSQ rssi; None when unknown (99)
    operator: str = ""
    lac: str = ""
    cell_id: str = ""
    imei: str = ""
    imsi: str = ""
    msisdn: str = ""
    last_event_at: float | None = None
    error: str = ""
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RegistrationChanged:
    """+CREG / +CGREG / +CEREG unsolicited (TS 27.007 §7.2, §10.1.20): `stat` 1 home, 5 roaming,
    2 searching, 3 denied, 0 not registered, 4 unknown."""

    probe: str
    stat: int
    lac: str = ""
    cell_id: str = ""
    at: float = 0.0


ProbeEvent = IncomingCall | SmsReceived | RegistrationChanged
