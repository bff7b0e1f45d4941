"""The probe manager: many probe modems, their health, and SIM-box detection by test calls.

    ModemSupervisor (one per probe, gsm_probe.modem) --events--> ProbeManager
        IncomingCall / SmsReceived --TestCallMatcher--> Finding --> alerts (simbox / route)
        --store.record_findings (findings, SIM-box numbers, outbox alerts: one transaction)-->
        dispatcher.notify() --> MQTT within seconds of the call
    ProbeHealth --> retained {prefix}/probes/<name> + a `probe` alert when a probe goes bad
        (unreachable, unregistered, or silent past its limit) and when it comes back

A finding the store cannot take (database down) is kept in memory and retried with backoff: a
SIM box seen by a probe is never forgotten because the database blinked.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from gateway.alerts.payloads import finding_alert_payload, iso_utc
from gateway.domain import Alert, AlertKind
from gateway.probes.simbox import (
    NAMES_A_NUMBER,
    Expected,
    Finding,
    Outcome,
    TestCallMatcher,
    TestPlanError,
    load_plan,
)
from gateway.store import StoreError
from gsm_probe.events import IncomingCall, ProbeEvent, ProbeHealth, SmsReceived
from smsc.backoff import Backoff

log = logging.getLogger("fraudgate.probes")

ROUTE_OUTCOMES = frozenset(
    {
        Outcome.CLI_MISSING,
        Outcome.CLI_FOREIGN,
        Outcome.CLI_ALTERED,
        Outcome.SENDER_ALTERED,
        Outcome.NO_ARRIVAL,
    }
)


class FindingStore(Protocol):
    async def record_findings(
        self, findings: Sequence[Finding], new_alerts: Sequence[Alert]
    ) -> None: ...


class StatePublisher(Protocol):
    def notify(self) -> None: ...

    def set_state(self, topic: str, payload: dict[str, object]) -> None: ...


class ProbeRunner(Protocol):
    """One probe's supervisor (gsm_probe.modem.ModemSupervisor): runs until stop()."""

    async def run(self) -> None: ...

    def stop(self) -> None: ...


RunnerFactory = Callable[
    [str, Callable[[ProbeEvent], None], Callable[[ProbeHealth], None]], ProbeRunner
]


PLAN_POLL = 2.0  # seconds between looks at the plan files for new or changed ones


@dataclass(frozen=True, slots=True)
class HealthLimits:
    down_after: float = 60.0  # unreachable or unregistered this long -> `probe` alert
    silent_after: float = 0.0  # no event at all this long -> alert; 0 = not checked


def finding_alert(f: Finding) -> Alert | None:
    """The alert a finding raises: `simbox` when it names a local number, `route` for a
    suspicious or failed route, none for a clean or unannounced event."""
    if f.outcome in NAMES_A_NUMBER:
        return Alert(AlertKind.SIMBOX, finding_alert_payload(f), f.at)
    if f.outcome in ROUTE_OUTCOMES:
        return Alert(AlertKind.ROUTE, finding_alert_payload(f), f.at)
    return None


def health_payload(h: ProbeHealth, problem: str) -> dict[str, object]:
    """The retained status document of a probe (docs/mqtt.md). The probe SIM is the operator's
    own, yet its IMSI and number are masked like any subscriber's."""
    doc: dict[str, object] = {
        k: v for k, v in asdict(h).items() if k not in ("extra", "imsi", "msisdn", "last_event_at")
    }
    doc["imsi"] = h.imsi[:5] + "*" * max(len(h.imsi) - 9, 0) + h.imsi[-4:] if h.imsi else ""
    doc["msisdn_tail"] = h.msisdn[-4:] if h.msisdn else ""
    doc["last_event_at"] = iso_utc(h.last_event_at) if h.last_event_at else None
    doc["problem"] = problem
    doc["ok"] = not problem
    return doc


@dataclass(frozen=True, slots=True)
class ProbeStatus:
    """A probe's health as the manager knows it now (the console's Probes page). No IMSI,
    number or IMEI: what an operator needs to see that a probe works."""

    name: str
    state: str  # up | unreachable | unregistered | silent
    problem: str  # "" when up; the text of the retained status and of the `probe` alert
    connected: bool
    registered: bool
    registration: int  # +CREG <stat>
    signal_dbm: int | None
    operator: str
    last_event_at: float | None  # the last call, SMS or registration change
    bad_since: float | None  # when the current problem was first seen (None when up)
    alerted: bool  # a `probe` alert was raised for the current problem


class ProbeManager:
    def __init__(
        self,
        probes: Sequence[str],
        store: FindingStore,
        publisher: StatePublisher,
        make_runner: RunnerFactory,
        *,
        plans: Sequence[Path] = (),
        topic: Callable[[str], str] = lambda name: f"fraudgate/probes/{name}",
        limits: HealthLimits | None = None,
        grace: float = 30.0,
        clock: Callable[[], float] = time.time,
        on_finding: Callable[[Finding], None] | None = None,
    ) -> None:
        self.probes = list(probes)
        self.store = store
        self.publisher = publisher
        self.make_runner = make_runner
        self.plans = list(plans)
        self.topic = topic
        self.limits = limits or HealthLimits()
        self.clock = clock
        self.on_finding = on_finding
        self.matcher = TestCallMatcher(grace)
        self.health: dict[str, ProbeHealth] = {p: ProbeHealth(p, connected=False) for p in probes}
        self.findings: list[Finding] = []  # the latest 1000, for summaries
        self.outcomes: dict[str, int] = {}  # findings by outcome since start (gateway.metrics)
        self._bad_since: dict[str, float] = {}
        self._alerted: dict[str, str] = {}  # probe -> the problem alerted about
        self._started = clock()
        self._pending: list[tuple[list[Finding], list[Alert]]] = []
        self._wake = asyncio.Event()
        self._runners: list[ProbeRunner] = []
        self._stopping = False
        self._plan_stamps: dict[Path, int] = {}
        self._plans_checked = 0.0

    # -- the plan ------------------------------------------------------------------------------
    def plan_files(self) -> list[Path]:
        """The configured plan files, and the *.toml / *.json / *.csv files in configured
        directories (a drop folder the test-call partner's schedule is copied into)."""
        files: list[Path] = []
        for path in self.plans:
            if path.is_dir():
                try:
                    names = sorted(path.iterdir())
                except OSError as e:  # the folder went away (an unmounted share)
                    log.error("test plan folder %s unreadable: %s", path, e)
                    continue
                files += [p for p in names if p.suffix.lower() in (".toml", ".json", ".csv")]
            else:
                files.append(path)
        return files

    def load_plans(self, *, changed_only: bool = False) -> int:
        """(Re)load the test plans; tests already known by id are kept as they are. With
        `changed_only`, only files new or modified since they were last read. A bad file is
        logged and skipped (and read again once it changes): announced tests stay."""
        new = 0
        for path in self.plan_files():
            try:
                stamp = path.stat().st_mtime_ns
            except OSError:
                stamp = None
            if changed_only and stamp is not None and self._plan_stamps.get(path) == stamp:
                continue
            if stamp is not None:
                self._plan_stamps[path] = stamp
            try:
                added = self.matcher.expect(load_plan(path), self.clock())
            except TestPlanError as e:
                log.error("test plan not loaded: %s", e)
                continue
            if added:
                log.info("%d test(s) announced by %s", added, path)
            new += added
        self._wake.set()
        return new

    def expect(self, tests: Sequence[Expected]) -> int:
        """Announce tests (the API used by a scheduler or a partner feed)."""
        new = self.matcher.expect(tests)
        self._wake.set()
        return new

    # -- events from the probes ----------------------------------------------------------------
    def on_event(self, event: ProbeEvent) -> None:
        h = self.health.get(event.probe)
        if h is not None:
            self.health[event.probe] = dataclasses.replace(h, last_event_at=event.at)
        if isinstance(event, IncomingCall):
            self._found(self.matcher.on_call(event))
        elif isinstance(event, SmsReceived):
            self._found(self.matcher.on_sms(event))
        elif h is not None:  # RegistrationChanged: act on it now, not at the next poll
            self.health[event.probe] = dataclasses.replace(
                self.health[event.probe],
                registered=event.stat in (1, 5),
                registration=event.stat,
                lac=event.lac or h.lac,
                cell_id=event.cell_id or h.cell_id,
            )
            self._check_health(event.probe, self.clock())

    def on_health(self, health: ProbeHealth) -> None:
        old = self.health.get(health.probe)
        if old is not None and health.last_event_at is None:
            health = dataclasses.replace(health, last_event_at=old.last_event_at)
        self.health[health.probe] = health
        self._check_health(health.probe, self.clock())

    def _found(self, finding: Finding) -> None:
        if finding.is_evidence:
            log.warning("%s", finding.description)
        else:
            log.info("%s: %s", finding.probe, finding.description)
        self.findings.append(finding)
        del self.findings[:-1000]
        outcome = str(finding.outcome)
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        if self.on_finding is not None:
            self.on_finding(finding)
        alert = finding_alert(finding)
        self._pending.append(([finding], [alert] if alert else []))
        self._wake.set()

    # -- health --------------------------------------------------------------------------------
    def problem(self, probe: str, now: float) -> str:
        """What is wrong with `probe` now ("" when healthy): monitoring's view of its health."""
        return self._problem(self.health[probe], now)

    def statuses(self, now: float) -> list[ProbeStatus]:
        """Every probe's health now, in configuration order."""
        out: list[ProbeStatus] = []
        for name, h in self.health.items():
            problem = self._problem(h, now)
            state = (
                "up" if not problem
                else "unreachable" if not h.connected
                else "unregistered" if not h.registered
                else "silent"
            )  # fmt: skip
            bad_since = self._bad_since.get(name) if problem else None
            out.append(
                ProbeStatus(
                    name=name, state=state, problem=problem, connected=h.connected,
                    registered=h.registered, registration=h.registration,
                    signal_dbm=h.signal_dbm, operator=h.operator,
                    last_event_at=h.last_event_at, bad_since=bad_since,
                    alerted=name in self._alerted,
                )
            )  # fmt: skip
        return out

    def _problem(self, h: ProbeHealth, now: float) -> str:
        if not h.connected:
            return f"unreachable: {h.error}" if h.error else "unreachable"
        if not h.registered:
            return f"not registered (+CREG stat {h.registration})"
        silent = self.limits.silent_after
        last = h.last_event_at or self._started
        if silent and now - last > silent:
            return f"silent since {iso_utc(last)}"  # stable text: the retained doc changes once
        return ""

    def _check_health(self, probe: str, now: float) -> None:
        h = self.health[probe]
        problem = self._problem(h, now)
        self.publisher.set_state(self.topic(probe), health_payload(h, problem))
        if not problem:
            self._bad_since.pop(probe, None)
            if probe in self._alerted:
                old = self._alerted.pop(probe)
                log.warning("probe %s is back (was %s)", probe, old)
                self._alert_probe(h, "", now, recovered_from=old)
            return
        since = self._bad_since.setdefault(probe, now)
        if now - since >= self.limits.down_after and probe not in self._alerted:
            self._alerted[probe] = problem
            log.warning("probe %s: %s", probe, problem)
            self._alert_probe(h, problem, now)

    def _alert_probe(
        self, h: ProbeHealth, problem: str, now: float, recovered_from: str = ""
    ) -> None:
        payload: dict[str, object] = {
            "probe": h.probe,
            "ok": not problem,
            "problem": problem or f"recovered from: {recovered_from}",
            "connected": h.connected,
            "registered": h.registered,
            "operator": h.operator,
            "signal_dbm": h.signal_dbm,
            "at": iso_utc(now),
        }
        self._pending.append(([], [Alert(AlertKind.PROBE, payload, now)]))
        self._wake.set()

    # -- the loop ------------------------------------------------------------------------------
    async def run(self) -> None:
        """Run every probe's supervisor and the findings loop until stop() (or cancellation)."""
        self.load_plans()
        async with asyncio.TaskGroup() as tg:
            for name in self.probes:
                runner = self.make_runner(name, self.on_event, self.on_health)
                self._runners.append(runner)
                tg.create_task(runner.run(), name=f"probe {name}")
            tg.create_task(self._work(), name="probe findings")

    def stop(self) -> None:
        for r in self._runners:
            r.stop()
        self._stopping = True
        self._wake.set()

    async def _work(self) -> None:
        backoff = Backoff(initial=0.5, cap=30.0)
        while not self._stopping:
            now = self.clock()
            if self.plans and now - self._plans_checked >= PLAN_POLL:
                self._plans_checked = now
                self.load_plans(changed_only=True)
            for f in self.matcher.handle_timer(now):
                self._found(f)
            for probe in self.health:
                self._check_health(probe, now)
            recorded = await self._record(backoff)
            if recorded and self._pending:
                continue  # more arrived while recording
            if recorded:
                deadline = self.matcher.next_deadline()
                delay = 1.0 if deadline is None else min(1.0, max(deadline - now, 0.05))
            else:
                delay = backoff.next_delay()
            self._wake.clear()
            if self._stopping:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
        if not await self._record(backoff) and self._pending:
            log.error(
                "stopping with %d probe finding(s) the store refused: they are lost",
                sum(len(f) for f, _ in self._pending),
            )

    async def _record(self, backoff: Backoff) -> bool:
        while self._pending:
            findings, alerts = self._pending[0]
            try:
                await self.store.record_findings(findings, alerts)
            except StoreError as e:
                if backoff.attempts == 0:
                    log.warning("probe findings kept in memory, store failing: %s", e)
                return False
            self._pending.pop(0)
            if backoff.attempts:
                log.warning("store is back: probe findings recorded")
                backoff.reset()
            if alerts:
                self.publisher.notify()
        return True

    @property
    def backlog(self) -> int:
        return len(self._pending)
