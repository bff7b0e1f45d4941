"""Lab scenarios: virtual phones, what each sends, and what each saw (docs/lab.md).

A scenario is TOML: `[[phone]]` tables (name, imsi, msisdn, optional ki, role, attach) provisioned
in osmo-hlr by `fraudgate lab up`, and `[[step]]` tables played in order by
`fraudgate lab scenario`:

    [[phone]]
    name = "aigerim"
    imsi = "001010000000001"
    msisdn = "77010000001"
    role = "subscriber"           # subscriber | fraudster | simfarm | offline (never attaches)

    [[step]]
    phone = "fraudster"
    to = ["aigerim", "daniyar"]   # phone names or numbers
    text = "Kaspi: ваша карта заблокирована. Подтвердите данные: http://kaspi-secure.top"
    expect = "rejected"           # delivered | rejected | accepted (checked: gateway inline)
    repeat = 1
    pause = 0.0                   # seconds after each message

Other step kinds: `action = "detach"`, `"attach"`, `"wait"` (`seconds`). The runner attaches every
phone except `offline` ones, plays the steps, waits `settle` seconds for the last deliveries and
reports per phone: attach outcome, every message sent with the network's answer (RP-ACK or
RP-ERROR and its cause), every message received. Expectations: `delivered` = accepted and every
destination phone received the text; `rejected` = RP-ERROR and no destination received it;
`accepted` = RP-ACK (for destinations that are not phones of the scenario).
"""

from __future__ import annotations

import asyncio
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.config_check import ConfigError, Table
from simulators.osmo.provision import LabSubscriber

if TYPE_CHECKING:
    from simulators.osmo.mme import AttachResult, Phone, SendResult, VirtualMme

ROLES = ("subscriber", "fraudster", "simfarm", "offline")
EXPECTS = ("", "delivered", "rejected", "accepted")
ACTIONS = ("sms", "attach", "detach", "wait")


@dataclass(frozen=True, slots=True)
class PhoneSpec:
    """A scenario's phone: its SIM as provisioned in osmo-hlr, and its role."""

    subscriber: LabSubscriber
    role: str = "subscriber"

    @property
    def name(self) -> str:
        return self.subscriber.name

    @property
    def imsi(self) -> str:
        return self.subscriber.imsi

    @property
    def msisdn(self) -> str:
        return self.subscriber.msisdn

    @property
    def attaches(self) -> bool:
        return self.role != "offline"


@dataclass(frozen=True, slots=True)
class Step:
    phone: str
    action: str = "sms"
    to: tuple[str, ...] = ()
    text: str = ""
    expect: str = ""
    repeat: int = 1
    pause: float = 0.0
    seconds: float = 0.0
    status_report: bool = False


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    phones: tuple[PhoneSpec, ...]
    steps: tuple[Step, ...]
    settle: float = 3.0

    def phone(self, name: str) -> PhoneSpec:
        for p in self.phones:
            if p.name == name:
                return p
        raise KeyError(name)

    def number(self, target: str) -> str:
        """A step's destination: a phone name -> its MSISDN; digits stay as written."""
        for p in self.phones:
            if p.name == target:
                return p.msisdn
        return target


def load_scenario(path: Path) -> Scenario:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{path}: {e}") from e
    return parse_scenario(data, path.name)


def parse_scenario(data: dict[str, Any], where: str) -> Scenario:
    root = Table(data, "")
    name = root.get("name", str, where)
    settle = root.number("settle", 3.0)
    phones = tuple(_phone(t) for t in root.tables("phone"))
    if not phones:
        raise ConfigError(f"{where}: no [[phone]]")
    _unique(where, "phone name", [p.name for p in phones])
    _unique(where, "imsi", [p.imsi for p in phones])
    _unique(where, "msisdn", [p.msisdn for p in phones])
    names = {p.name for p in phones}
    steps = []
    for t in root.tables("step"):
        step = _step(t)
        if step.phone not in names:
            raise ConfigError(f"{t.key('phone')}: no phone named {step.phone!r}")
        for target in step.to:
            if target not in names and not target.isdigit():
                raise ConfigError(f"{t.key('to')}: {target!r} is neither a phone nor a number")
        steps.append(step)
    root.done()
    return Scenario(name, phones, tuple(steps), settle)


def _phone(t: Table) -> PhoneSpec:
    sim = LabSubscriber(
        imsi=t.get("imsi", str),
        msisdn=t.get("msisdn", str),
        ki=t.get("ki", str, ""),
        name=t.get("name", str),
    )
    if problems := sim.problems():  # the rules provisioning applies
        raise ConfigError(f"{t.path}: {'; '.join(problems)}")
    spec = PhoneSpec(sim, t.get("role", str, "subscriber"))
    if spec.role not in ROLES:
        raise ConfigError(f"{t.key('role')}: one of {', '.join(ROLES)}, got {spec.role!r}")
    t.done()
    return spec


def _step(t: Table) -> Step:
    action = t.get("action", str, "sms")
    if action not in ACTIONS:
        raise ConfigError(f"{t.key('action')}: one of {', '.join(ACTIONS)}, got {action!r}")
    to = t.get("to", list, [])
    if not all(isinstance(x, str) for x in to):
        raise ConfigError(f"{t.key('to')}: a list of phone names or numbers")
    step = Step(
        phone=t.get("phone", str),
        action=action,
        to=tuple(to),
        text=t.get("text", str, ""),
        expect=t.get("expect", str, ""),
        repeat=t.integer("repeat", 1, minimum=1, maximum=10_000),
        pause=t.number("pause", 0.0),
        seconds=t.number("seconds", 0.0),
        status_report=t.get("status_report", bool, False),
    )
    if step.expect not in EXPECTS:
        raise ConfigError(f"{t.key('expect')}: one of delivered, rejected, accepted")
    if action == "sms" and not (step.to and step.text):
        raise ConfigError(f"{t.key('to')}: an sms step needs `to` and `text`")
    t.done()
    return step


def _unique(where: str, what: str, values: Sequence[str]) -> None:
    seen: set[str] = set()
    for v in values:
        if v in seen:
            raise ConfigError(f"{where}: {what} {v!r} appears twice")
        seen.add(v)


# -- running ----------------------------------------------------------------------------------
@dataclass(slots=True)
class Sent:
    to: str
    text: str
    answer: str  # "RP-ACK" | "RP-ERROR cause N" | "timeout" | "not attached"
    accepted: bool
    expect: str
    met: bool | None = None  # None: not checked


@dataclass(slots=True)
class PhoneReport:
    spec: PhoneSpec
    attach: str = "not attached"
    sent: list[Sent] = field(default_factory=list)
    received: list[tuple[str, str]] = field(default_factory=list)  # (from, text)


@dataclass(slots=True)
class ScenarioResult:
    phones: dict[str, PhoneReport]
    took: float = 0.0

    @property
    def checked(self) -> list[Sent]:
        return [s for r in self.phones.values() for s in r.sent if s.met is not None]

    @property
    def unmet(self) -> list[tuple[str, Sent]]:
        return [(n, s) for n, r in self.phones.items() for s in r.sent if s.met is False]


async def run_scenario(
    sc: Scenario, mme: VirtualMme, *, check: bool = True, sms_timeout: float = 15.0
) -> ScenarioResult:
    """Attach the phones, play the steps, settle, and collect what every phone saw."""
    started = time.monotonic()
    reports = {p.name: PhoneReport(p) for p in sc.phones}
    phones: dict[str, Phone] = {p.name: mme.phone(p.imsi, p.msisdn) for p in sc.phones}
    collectors = [asyncio.create_task(_collect(phones[p.name], reports[p.name])) for p in sc.phones]
    try:
        await asyncio.gather(
            *(_attach(phones[p.name], reports[p.name]) for p in sc.phones if p.attaches)
        )
        for step in sc.steps:
            await _play(sc, step, phones[step.phone], reports[step.phone], sms_timeout)
        await asyncio.sleep(sc.settle)
    finally:
        for task in collectors:
            task.cancel()
        await asyncio.gather(*collectors, return_exceptions=True)
    result = ScenarioResult(reports, time.monotonic() - started)
    if check:
        _check(sc, result)
    return result


async def _attach(phone: Phone, report: PhoneReport) -> None:
    res = await phone.attach()
    report.attach = _describe_attach(res)


def _describe_attach(res: AttachResult) -> str:
    if res.accepted:
        return "attached"
    return f"attach REJECTED (cause {res.cause})" if res.cause is not None else "attach REJECTED"


async def _collect(phone: Phone, report: PhoneReport) -> None:
    while True:
        try:
            sms = await phone.next_sms(timeout=3600)
        except TimeoutError:
            continue
        report.received.append((sms.originator, sms.text))


async def _play(
    sc: Scenario, step: Step, phone: Phone, report: PhoneReport, timeout: float
) -> None:
    if step.action == "wait":
        await asyncio.sleep(step.seconds)
        return
    if step.action == "attach":
        await _attach(phone, report)
        return
    if step.action == "detach":
        await phone.detach()
        report.attach = "detached"
        return
    for _ in range(step.repeat):
        for target in step.to:
            number = sc.number(target)
            results = await phone.send_sms(
                number, step.text, status_report=step.status_report, timeout=timeout
            )
            accepted = bool(results) and all(r.ok for r in results)
            answer = "RP-ACK" if accepted else _describe_failure(results)
            report.sent.append(Sent(target, step.text, answer, accepted, step.expect))
            if step.pause:
                await asyncio.sleep(step.pause)


def _describe_failure(results: Sequence[SendResult]) -> str:
    failed = [r for r in results if not r.ok]
    if not failed:
        return "no answer"
    return "; ".join(_failure(r) for r in failed)


def _failure(r: SendResult) -> str:
    what = {"error": "RP-ERROR", "cp-error": "CP-ERROR", "released": "released"}.get(
        r.outcome, r.outcome
    )
    cause = r.rp_cause if r.rp_cause is not None else r.cp_cause or r.sgs_cause
    part = f"part {r.part}/{r.parts} " if r.parts > 1 else ""
    return f"{part}{what}" + (f" cause {cause}" if cause is not None else "")


def _check(sc: Scenario, result: ScenarioResult) -> None:
    names = {p.name for p in sc.phones}
    for report in result.phones.values():
        for sent in report.sent:
            if not sent.expect:
                continue
            got = sent.to in names and any(
                text == sent.text for _, text in result.phones[sent.to].received
            )
            if sent.expect == "accepted":
                sent.met = sent.accepted
            elif sent.expect == "delivered":
                sent.met = sent.accepted and (got or sent.to not in names)
            else:  # rejected
                sent.met = not sent.accepted and not got


def format_result(sc: Scenario, result: ScenarioResult, *, width: int = 60) -> str:
    lines = [f"Scenario: {sc.name} ({result.took:.1f} s)"]
    for name, r in result.phones.items():
        lines.append(f"{name} ({r.spec.msisdn}, {r.spec.role}): {r.attach}")
        for s in r.sent:
            mark = {None: "", True: "  ok", False: f"  UNEXPECTED (expected {s.expect})"}[s.met]
            lines.append(f"  sent → {s.to}: {_short(s.text, width)!r} {s.answer}{mark}")
        for frm, text in r.received:
            lines.append(f"  received ← {frm}: {_short(text, width)!r}")
        if not r.sent and not r.received:
            lines.append("  (no messages)")
    checked = result.checked
    if checked:
        unmet = len(result.unmet)
        lines.append(f"Expectations: {len(checked) - unmet} met, {unmet} unmet")
    return "\n".join(lines)


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
