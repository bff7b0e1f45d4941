"""The call record fraudgate reads: the fields of a 3GPP TS 32.298 MSC record that call-fraud
detection needs, flattened to one row (docs/calls.md lists them with their ASN.1 names).

Sans-I/O: plain values in, a `Cdr` out. Readers (gateway.calls.reader) turn CSV / JSON lines into
these; the generator (simulators.cdr) writes the same columns.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum


class RecordType(StrEnum):
    """TS 32.298 §5.1.2 record types a CS core writes (and the PS core's data sessions)."""

    MOC = "MOC"  # mobile originated call (moCallRecord): the served subscriber called
    MTC = "MTC"  # mobile terminated call (mtCallRecord): the served subscriber was called
    SMS_MO = "SMS_MO"  # moSMSRecord
    SMS_MT = "SMS_MT"  # mtSMSRecord
    DATA = "DATA"  # a data session of the served subscriber (SGSN / PGW record, summarised)
    TRANSIT = "TRANSIT"  # a call through the switch to no subscriber of ours (transitRecord)


CALL_TYPES = frozenset({RecordType.MOC, RecordType.MTC, RecordType.TRANSIT})

# Causes for termination (TS 32.298 CauseForTerm, as the MSC writes them in its CDRs): what a
# Wangiri ring ends with when the subscriber does not answer.
NORMAL_RELEASE = 0
PARTIAL_RECORD = 1
UNSUCCESSFUL_CALL_ATTEMPT = 3
ABNORMAL_RELEASE = 4
CAUSES = {
    "normalRelease": NORMAL_RELEASE,
    "partialRecord": PARTIAL_RECORD,
    "partialRecordCallReestablishment": 2,
    "unsuccessfulCallAttempt": UNSUCCESSFUL_CALL_ATTEMPT,
    "abnormalRelease": ABNORMAL_RELEASE,
    "cAMELInitCallRelease": 5,
}


@dataclass(slots=True)
class Cdr:
    """One call record. Numbers are E.164 digits without '+' ("" when absent); times are epoch
    seconds (UTC); `duration` is the chargeable seconds (0: never answered).

    `record_id` identifies the record at its source (the recording entity's name and its
    localSequenceNumber, "msc1:000123"); a re-delivered record has the same id, so it is
    counted once. Without one, `key()` derives an id from the record's content."""

    record_type: RecordType
    start: float  # seizure / answer time (TS 32.298 seizureTime, else answerTime)
    duration: float = 0.0  # callDuration
    served_imsi: str = ""  # servedIMSI
    served_imei: str = ""  # servedIMEI (14 or 15 digits; the first 8 are the TAC)
    served_msisdn: str = ""  # servedMSISDN
    calling: str = ""  # callingNumber (the CLI presented)
    called: str = ""  # calledNumber
    cause: int = NORMAL_RELEASE  # causeForTerm
    lac: int = 0  # locationAreaCode of the first location
    cell: int = 0  # cellIdentifier of the first location
    in_trunk: str = ""  # incoming trunk group (mSCIncomingTKGP)
    out_trunk: str = ""  # outgoing trunk group (mSCOutgoingTKGP)
    record_id: str = ""  # recordingEntity:localSequenceNumber, when the source gives them

    def key(self) -> str:
        """The record's identity for de-duplication: `record_id` when given, else a digest of
        what the record says (type, served IMSI and MSISDN, parties, start, duration)."""
        if self.record_id:
            return self.record_id
        raw = "|".join(
            (
                self.record_type.value, self.served_imsi, self.served_msisdn, self.calling,
                self.called, repr(self.start), repr(self.duration),
            )
        )  # fmt: skip
        return "h:" + hashlib.blake2b(raw.encode(), digest_size=12).hexdigest()

    @property
    def tac(self) -> str:
        """The IMEI's Type Allocation Code (the device model), "" without an IMEI."""
        return self.served_imei[:8] if len(self.served_imei) >= 14 else ""

    @property
    def answered(self) -> bool:
        return self.duration > 0


class CdrError(ValueError):
    """A record that cannot be used: `where` names the file and line (or the stream and its
    line), `field` the column at fault when one is."""

    def __init__(self, reason: str, *, where: str = "", field: str = "") -> None:
        self.reason = reason
        self.where = where
        self.field = field
        at = f"{where}: " if where else ""
        col = f"{field}: " if field else ""
        super().__init__(f"{at}{col}{reason}")
