"""SIM-box detection by test calls and test SMS (sans-I/O: events and time in, findings out).

A test-call partner (or the operator's own scheduler) places calls from abroad to probe SIMs on
the operator's network, each announced in advance: which international A-number calls which
probe, within which time window, over which route. What the probe sees decides:

    CLI as sent (same number)               -> clean route
    a Kazakh mobile CLI (+7 7xx ...)        -> SIM box: the call was terminated by a local SIM,
                                               whose number is the CLI (high confidence)
    a Kazakh fixed / VoIP CLI (+7 7172 ...) -> local termination through a fixed or VoIP line
    no CLI, withheld or unavailable         -> suspicious route (CLI stripped on the way)
    a foreign CLI of another country        -> suspicious route (CLI replaced, refiling)
    another number of the sending country   -> suspicious route (CLI altered)
    nothing within the window               -> route failure (reported apart: not fraud
                                               evidence, but a broken or grey-routed test)

Test SMS work the same way: an A2P test message from a known sender that reaches the probe from a
local P2P number went through a SIM farm.

Classification uses E.164 country metadata from `phonenumbers` (Kazakhstan shares +7 with
Russia: Kazakh numbers are +7 6xx / 7xx, see ../shared/domain/KAZAKHSTAN.md).
"""

from __future__ import annotations

import csv
import io
import json
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import phonenumbers

from gateway.detect.sender import KZ_MOBILE_RE, TON_ALPHANUMERIC, normalise_msisdn
from gateway.ids import new_id
from gsm_probe.events import IncomingCall, SmsReceived

GRACE = 30.0  # seconds after a window's end during which a late test call still counts


class Outcome(StrEnum):
    CLEAN = "clean"
    SIMBOX = "simbox"  # a local mobile CLI on an international test call: the SIM box's SIM
    SIMFARM = "simfarm"  # an A2P test SMS that arrived from a local mobile number
    LOCAL_CLI = "local_cli"  # a Kazakh fixed or VoIP CLI on an international test call
    CLI_MISSING = "cli_missing"
    CLI_FOREIGN = "cli_foreign"
    CLI_ALTERED = "cli_altered"
    SENDER_ALTERED = "sender_altered"  # a test SMS from another sender that is not local mobile
    NO_ARRIVAL = "no_arrival"  # route failure: the expected call or SMS never came
    UNEXPECTED = "unexpected"  # a call or SMS on a probe with no test announced


# How sure each outcome is that the route is fraudulent (the score of the finding).
CONFIDENCE: dict[Outcome, float] = {
    Outcome.CLEAN: 0.0,
    Outcome.SIMBOX: 0.95,
    Outcome.SIMFARM: 0.9,
    Outcome.LOCAL_CLI: 0.8,
    Outcome.CLI_MISSING: 0.6,
    Outcome.CLI_FOREIGN: 0.6,
    Outcome.CLI_ALTERED: 0.5,
    Outcome.SENDER_ALTERED: 0.5,
    Outcome.NO_ARRIVAL: 0.0,
    Outcome.UNEXPECTED: 0.0,
}
# Outcomes that name a local number as a bypass SIM (kept in the SIM-box number list).
NAMES_A_NUMBER = frozenset({Outcome.SIMBOX, Outcome.SIMFARM, Outcome.LOCAL_CLI})


class TestPlanError(ValueError):
    """A test plan (file or API call) that cannot be used: the message names the entry."""

    __test__ = False  # not a pytest test class


@dataclass(frozen=True, slots=True)
class Expected:
    """One announced test: `a_number` calls (kind "call") or sends an SMS to (kind "sms")
    `probe` between `start` and `end` (epoch seconds) over `route` (a partner/carrier label).
    For an SMS `a_number` is the sender as the A2P platform sends it (e.g. "KaspiBank")."""

    probe: str
    a_number: str
    start: float
    end: float
    kind: str = "call"
    route: str = ""
    id: str = field(default_factory=new_id)

    def __post_init__(self) -> None:
        if self.kind not in ("call", "sms"):
            raise TestPlanError(f"test {self.id}: kind {self.kind!r} is not call or sms")
        if not self.probe:
            raise TestPlanError(f"test {self.id}: no probe")
        if not self.a_number:
            raise TestPlanError(f"test {self.id}: no a_number")
        if self.end <= self.start:
            raise TestPlanError(f"test {self.id}: window ends before it starts")
        if self.kind == "call" and _e164(self.a_number, 1) is None:
            raise TestPlanError(f"test {self.id}: a_number {self.a_number!r} is not E.164")


@dataclass(frozen=True, slots=True)
class Finding:
    """The result of one test (or an unannounced event on a probe)."""

    outcome: Outcome
    probe: str
    at: float
    observed: str  # the CLI or SMS originator as received ("" for none)
    observed_ton: int
    expected: Expected | None
    number: str = ""  # E.164 digits of the local number named by the finding (SIM-box SIM)
    description: str = ""
    id: str = field(default_factory=new_id)

    @property
    def confidence(self) -> float:
        return CONFIDENCE[self.outcome]

    @property
    def is_evidence(self) -> bool:
        return self.confidence > 0


def _e164(number: str, ton: int) -> str | None:
    """E.164 digits of a CLI or SMS originator in any written form, or None."""
    plain = number.strip()
    if plain.startswith("+"):
        ton = 1
    return normalise_msisdn(plain, ton)


def clip_ton(type_octet: int) -> int:
    """The type-of-number field (SMPP TON values) of a +CLIP <type> octet (TS 24.008
    §10.5.4.7: 145 = international, 129 = unknown, 161 = national)."""
    return (type_octet >> 4) & 0x7


def country_code(e164: str) -> int | None:
    try:
        parsed = phonenumbers.parse("+" + e164)
    except phonenumbers.NumberParseException:
        return None
    return parsed.country_code


def is_kz(e164: str) -> bool:
    """A Kazakh number (+7 6xx / 7xx): +7 is shared with Russia (3xx, 4xx, 8xx, 9xx)."""
    return e164.startswith("7") and len(e164) == 11 and e164[1] in "67"


def classify_cli(expected: str, number: str, ton: int, validity: int = 0) -> tuple[Outcome, str]:
    """The outcome of an international test call from `expected` that arrived with CLI
    (`number`, `ton`, +CLIP `validity`), and the E.164 number it names (if local)."""
    if validity != 0 or not number.strip():
        return Outcome.CLI_MISSING, ""
    want = _e164(expected, 1)
    got = _e164(number, ton)
    if got is None:
        return Outcome.CLI_FOREIGN, ""  # not a number at all (garbage or a short code)
    if got == want:
        return Outcome.CLEAN, got
    if KZ_MOBILE_RE.fullmatch(got):
        return Outcome.SIMBOX, got
    if is_kz(got):
        return Outcome.LOCAL_CLI, got
    if want is not None and country_code(got) == country_code(want):
        return Outcome.CLI_ALTERED, ""
    return Outcome.CLI_FOREIGN, ""


def classify_sender(expected: str, originator: str, ton: int) -> tuple[Outcome, str]:
    """The outcome of an A2P test SMS announced from `expected` that arrived from
    (`originator`, `ton`)."""
    if ton == TON_ALPHANUMERIC or not originator.strip("+").isdigit():
        same = originator.strip().casefold() == expected.strip().casefold()
        return (Outcome.CLEAN if same else Outcome.SENDER_ALTERED), ""
    got = _e164(originator, ton)
    if got is not None and got == _e164(expected, 1):
        return Outcome.CLEAN, got
    if got is not None and KZ_MOBILE_RE.fullmatch(got):
        return Outcome.SIMFARM, got
    return Outcome.SENDER_ALTERED, ""


class TestCallMatcher:
    """Announced tests in, probe events in, findings out. Each announced test yields exactly one
    finding: the first matching event within its window (+ GRACE), else NO_ARRIVAL once the
    window is over (`handle_timer`)."""

    __test__ = False  # not a pytest test class

    def __init__(self, grace: float = GRACE) -> None:
        self.grace = grace
        self._open: dict[str, Expected] = {}
        self._done: set[str] = set()  # concluded tests (ids): a reloaded plan repeats them

    # the plan ------------------------------------------------------------------------------
    def expect(self, tests: Iterable[Expected], now: float | None = None) -> int:
        """Announce tests; one already known by id is kept as it is (a plan reloaded twice
        does not reset the tests in it), one already concluded is not announced again, and with
        `now` one whose window closed before it was announced is skipped (nobody watched it:
        concluding "no arrival" would be false). Returns how many were new."""
        new = 0
        for t in tests:
            if t.id in self._open or t.id in self._done:
                continue
            if now is not None and t.end + self.grace < now:
                continue
            self._open[t.id] = t
            new += 1
        return new

    def cancel(self, test_id: str) -> bool:
        return self._open.pop(test_id, None) is not None

    @property
    def open_tests(self) -> list[Expected]:
        return sorted(self._open.values(), key=lambda t: (t.start, t.id))

    # events --------------------------------------------------------------------------------
    def on_call(self, call: IncomingCall) -> Finding:
        ton = clip_ton(call.ton)
        test = self._take(call.probe, "call", call.at, call.number, ton)
        if test is None:
            return Finding(
                Outcome.UNEXPECTED, call.probe, call.at, call.number, ton, None,
                description="a call on a probe with no test call announced",
            )  # fmt: skip
        outcome, number = classify_cli(test.a_number, call.number, ton, call.validity)
        return Finding(
            outcome, call.probe, call.at, call.number, ton, test,
            number=number if outcome in NAMES_A_NUMBER else "",
            description=_describe(outcome, test, call.number or "no CLI"),
        )  # fmt: skip

    def on_sms(self, sms: SmsReceived) -> Finding:
        test = self._take(sms.probe, "sms", sms.at, sms.originator, sms.originator_ton)
        if test is None:
            return Finding(
                Outcome.UNEXPECTED, sms.probe, sms.at, sms.originator, sms.originator_ton, None,
                description="an SMS on a probe with no test SMS announced",
            )  # fmt: skip
        outcome, number = classify_sender(test.a_number, sms.originator, sms.originator_ton)
        return Finding(
            outcome, sms.probe, sms.at, sms.originator, sms.originator_ton, test,
            number=number if outcome in NAMES_A_NUMBER else "",
            description=_describe(outcome, test, sms.originator),
        )  # fmt: skip

    def handle_timer(self, now: float) -> list[Finding]:
        """NO_ARRIVAL findings for tests whose window (+ grace) is over."""
        out: list[Finding] = []
        for test in [t for t in self.open_tests if t.end + self.grace < now]:
            del self._open[test.id]
            self._done.add(test.id)
            what = "test call" if test.kind == "call" else "test SMS"
            out.append(
                Finding(
                    Outcome.NO_ARRIVAL,
                    test.probe,
                    now,
                    "",
                    0,
                    test,
                    description=f"{what} from {test.a_number} via {test.route or '?'} never "
                    f"reached {test.probe}",
                )
            )
        return out

    def next_deadline(self) -> float | None:
        ends = [t.end + self.grace for t in self._open.values()]
        return min(ends) if ends else None

    def _take(self, probe: str, kind: str, at: float, observed: str, ton: int) -> Expected | None:
        """The announced test an event answers. Windows of one probe should not overlap (the
        partner calls a probe one call at a time); when they do, a test whose A-number is what
        the probe saw wins, else the one that started last: an earlier test still open is more
        likely lost than overtaken."""
        candidates = [
            t
            for t in self._open.values()
            if t.probe == probe and t.kind == kind and t.start <= at <= t.end + self.grace
        ]
        if not candidates:
            return None
        same = [t for t in candidates if _same_party(t, observed, ton)]
        test = max(same or candidates, key=lambda t: (t.start, t.id))
        del self._open[test.id]
        self._done.add(test.id)
        return test


def _same_party(test: Expected, observed: str, ton: int) -> bool:
    if test.kind == "sms" and not observed.strip("+").isdigit():
        return observed.strip().casefold() == test.a_number.strip().casefold()
    got = _e164(observed, ton)
    return got is not None and got == _e164(test.a_number, 1)


def _describe(outcome: Outcome, test: Expected, seen: str) -> str:
    route = test.route or "?"
    text = {
        Outcome.CLEAN: "arrived as sent",
        Outcome.SIMBOX: "arrived with a local mobile CLI: terminated through a SIM box",
        Outcome.SIMFARM: "arrived from a local mobile number: sent through a SIM farm",
        Outcome.LOCAL_CLI: "arrived with a local fixed/VoIP CLI: terminated locally",
        Outcome.CLI_MISSING: "arrived without a CLI",
        Outcome.CLI_FOREIGN: "arrived with a CLI of another country",
        Outcome.CLI_ALTERED: "arrived with another number of the sending country",
        Outcome.SENDER_ALTERED: "arrived from another sender",
    }[outcome]
    return f"{test.kind} from {test.a_number} via {route} to {test.probe} {text} ({seen})"


# --------------------------------------------------------------------------------------------
# Test plans: files from the test-call partner


def load_plan(path: Path) -> list[Expected]:
    """A test plan: TOML (`[[test]]` tables), JSON (a list of objects) or CSV (a header row).
    Fields: probe, a_number, start, end (ISO 8601 with a zone, or epoch seconds), kind (call |
    sms, default call), route, id (default: a new one; give ids so a reloaded plan is not
    announced twice)."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM from Excel is not data
    except (OSError, UnicodeDecodeError) as e:
        raise TestPlanError(f"cannot read the test plan {path} (UTF-8 expected): {e}") from e
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            rows: list[Any] = tomllib.loads(text).get("test", [])
        elif suffix == ".json":
            rows = json.loads(text)
        elif suffix == ".csv":
            rows = _csv_rows(text)
        else:
            raise TestPlanError(f"{path}: a test plan is .toml, .json or .csv")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, csv.Error) as e:
        raise TestPlanError(f"{path}: {e}") from e
    if not isinstance(rows, list):
        raise TestPlanError(f"{path}: expected a list of tests")
    return [parse_test(row, f"{path.name} entry {i + 1}") for i, row in enumerate(rows)]


def _csv_rows(text: str) -> list[dict[str, Any]]:
    rows = []
    for i, row in enumerate(csv.DictReader(io.StringIO(text))):
        if None in row:  # more fields than the header names
            raise TestPlanError(f"line {i + 2}: more fields than the header has")
        rows.append(row)
    return rows


def parse_test(row: Any, where: str = "test") -> Expected:
    if not isinstance(row, dict):
        raise TestPlanError(f"{where}: expected a table of fields")
    unknown = set(row) - {"probe", "a_number", "start", "end", "kind", "route", "id"}
    if unknown:
        raise TestPlanError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    try:
        extra = {"id": str(row["id"])} if row.get("id") else {}
        return Expected(
            probe=str(row.get("probe", "")),
            a_number=str(row.get("a_number", "")),
            start=_when(row.get("start"), "start", where),
            end=_when(row.get("end"), "end", where),
            kind=str(row.get("kind") or "call"),
            route=str(row.get("route") or ""),
            **extra,
        )
    except TestPlanError as e:
        raise TestPlanError(f"{where}: {e}") from None


def _when(value: Any, key: str, where: str) -> float:
    import datetime as dt

    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, dt.datetime):  # TOML datetimes
        if value.tzinfo is None:
            raise TestPlanError(f"{key} {value}: give a time zone (e.g. +05:00)")
        return value.timestamp()
    if isinstance(value, str) and value.strip():
        s = value.strip()
        try:
            return float(s)
        except ValueError:
            pass
        try:
            moment = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
        except ValueError:
            raise TestPlanError(f"{key} {value!r} is not ISO 8601 or epoch seconds") from None
        if moment.tzinfo is None:
            raise TestPlanError(f"{key} {value!r}: give a time zone (e.g. +05:00)")
        return moment.timestamp()
    raise TestPlanError(f"{key} missing")
