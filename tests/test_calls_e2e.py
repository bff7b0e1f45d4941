"""Call records end to end (issue 18): a day of generated CDRs, with a SIM box in it, is dropped in
the gateway's inbox as a gzip file. The gateway (SQLite, a real mosquitto, the simulated switch
and anti-fraud centre over mutual TLS) must: announce the SIM-box SIMs on `alerts/call` (valid
against the schema), open a case per SIM, and, once an analyst confirms the one whose holder is
on record, suspend every number of that subscriber (the operator's subscriber policy) and report
the subscriber with all their numbers to the centre. Wangiri and spoofed caller ids in the same
file are announced; the same file dropped again under another name is not read again; the
ordinary subscribers and the hard cases raise nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

from jsonschema import Draft202012Validator
from test_mqtt import SCHEMA_PATH, Subscriber, wait_until

from gateway.cases import Actor, CaseFilter, Source, State, SuspendScope
from gateway.config import GatewayConfig
from gateway.daemon import Gateway
from gateway.registry import Registry
from gateway.store import Store
from gateway.switch.config import SwitchSettings
from simulators.cdr import SIMBOX_A, CdrGenerator, Mix, write_records
from simulators.centre import CentreSimulator, make_certs
from simulators.switch import SwitchSimulator

if TYPE_CHECKING:
    from fixtures_services import MosquittoBroker

IIN = "900101300017"  # synthetic (domain/KAZAKHSTAN.md)
OTHER_NUMBERS = ["77015550101", "77475550102"]  # the holder's other numbers, not in the CDRs
ANALYST = Actor("a.nurlanova", "analyst")
MIX = Mix(
    "e2e", normal=150, call_centre=1, taxi=1, m2m=1, two_phones=1, roamers=1, simbox=1,
    wangiri=1, spoofing=1, simbox_variant=SIMBOX_A, wangiri_victims=(40, 60),
    spoof_calls=(20, 30),
)  # fmt: skip


def day_of_records(path: Path) -> CdrGenerator:
    """Yesterday (local midnight, UTC+5) to now, written gzip'd as the mediation would."""
    local = dt.timezone(dt.timedelta(hours=5))
    today = dt.datetime.now(local).replace(hour=0, minute=0, second=0, microsecond=0)
    gen = CdrGenerator(seed=7, mix=MIX, days=1.0, start=(today - dt.timedelta(days=1)).timestamp())
    part = path.with_name(path.name + ".part")  # written, then renamed: never taken half-done
    write_records(gen, part)
    part.rename(path)
    return gen


async def seed_registry(url: str, sim: str) -> None:
    async with await Store.open(url) as store:
        await store.migrate()
        registry = Registry(store)
        await registry.register_person(IIN, "Иванов", "Иван", "Иванович")
        for n in [sim, *OTHER_NUMBERS]:
            await registry.register_number(IIN, n, contract_date=dt.date(2020, 1, 1))


async def test_cdr_file_to_simbox_case_suspension_and_centre_report(
    mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    validator = Draft202012Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))
    inbox = tmp_path / "cdr"
    inbox.mkdir()
    staging = tmp_path / "staging"
    staging.mkdir()
    gen = day_of_records(staging / "msc1-20261207.csv.gz")
    labels = gen.labels
    sims = sorted(labels.simbox)
    assert len(sims) >= 4  # the gateway's SIMs
    held = sims[0]  # the SIM whose holder is on record

    certs = make_certs(tmp_path / "pki")
    cfg = GatewayConfig(data_dir=tmp_path / "data")
    cfg.mqtt.port = mosquitto.port
    await seed_registry(cfg.database_url, held)
    async with SwitchSimulator() as switch, CentreSimulator(certs) as centre:
        cfg.cases.interval = 0.2
        cfg.cases.suspend_scope = SuspendScope.SUBSCRIBER.value
        cfg.cases.suspend_scope_reason = "a SIM box's holder loses every number (policy 7/2026)"
        cfg.switch = SwitchSettings.http(switch.url, switch.token)
        c = cfg.centre
        c.url, c.operator = centre.url, "kcell"
        c.client_cert, c.client_key = map(str, certs.cert("operator", "client"))
        c.ca = str(certs.centre_ca)
        cfg.calls.enabled = True
        cfg.calls.inbox = str(inbox)
        cfg.calls.scan_interval = 0.2
        stop = asyncio.Event()
        gateway = Gateway(cfg)
        async with Subscriber(mosquitto.port, ["fraudgate/alerts/call"]) as sub:
            run = asyncio.create_task(gateway.run(stop))
            await asyncio.wait_for(gateway.ready.wait(), 30)
            assert gateway.workflow is not None and gateway.calls is not None
            cases = gateway.workflow.cases
            dropped = time.monotonic()
            (staging / "msc1-20261207.csv.gz").rename(inbox / "msc1-20261207.csv.gz")

            def alerts() -> list[dict[str, object]]:
                return [m.body for m in sub.received]

            await wait_until(
                lambda: any(a.get("number") == held for a in alerts()), 60, "the SIM's alert"
            )
            alert_after = time.monotonic() - dropped
            assert gateway.calls.inbox is not None
            reader = gateway.calls.inbox
            await wait_until(lambda: reader.files == 1, 60, "the file read")
            await asyncio.sleep(0.5)  # the last findings' alerts
            got = alerts()
            for a in got:
                validator.validate(a)
            by_kind: dict[str, set[str]] = {}
            for a in got:
                by_kind.setdefault(str(a["finding"]), set()).add(str(a["subject"]))
            # every SIM-box SIM found, and nothing about anyone else
            assert by_kind["simbox"] <= set(sims)
            assert len(by_kind["simbox"]) >= 0.9 * len(sims)
            assert by_kind.get("wangiri") and by_kind.get("spoofed_cli")
            simbox_alert = next(a for a in got if a.get("number") == held)
            assert simbox_alert["kind"] == "call" and str(simbox_alert["imsi"]).count("*") >= 4
            assert simbox_alert["reasons"]
            spoofed = next(a for a in got if a["finding"] == "spoofed_cli")
            assert "***" in str(spoofed["subject"])  # a victim's number: masked

            # a case per SIM-box SIM, the holder's on record
            async def simbox_cases() -> list[object]:
                return list(await cases.list(CaseFilter(source=Source.DETECTION_SIMBOX, limit=100)))

            await wait_until(
                lambda: _at_least(simbox_cases, len(by_kind["simbox"])), 30, "SIM-box cases"
            )
            every = await cases.list(CaseFilter(source=Source.DETECTION_SIMBOX, limit=100))
            found = [v for v in every if list(v.numbers) == ["+" + held]]
            assert len(found) == 1, [v.numbers for v in every]
            case = found[0]
            assert case.person_id is not None and case.state is State.NEW
            await cases.start_verification(case.id, ANALYST, "CDR pattern reviewed")
            view = await cases.confirm(case.id, ANALYST, "SIM box: 24/7 calls, one cell, no SMS")
            assert view.state is State.SUSPENDED
            for n in [held, *OTHER_NUMBERS]:  # every number of the subscriber
                assert switch.state.get("+" + n) == "blocked", n
            await centre.wait_for(1, timeout=20)
            docs = [r.document for r in centre.reports.values() if r.document["case_id"] == case.id]
            detection = next(d for d in docs if d["kind"] == "detection")
            subscriber = detection["subscriber"]
            assert subscriber["iin"] == IIN
            assert sorted(subscriber["numbers"]) == sorted("+" + n for n in [held, *OTHER_NUMBERS])

            # the same file again, under another name: not read twice, nothing new
            before = len(sub.received)
            shutil.copy(inbox / "msc1-20261207.csv.gz", inbox / "msc1-20261207-resent.csv.gz")
            assert gateway.calls.inbox is not None
            inbox_of = gateway.calls.inbox
            await wait_until(lambda: inbox_of.skipped_files == 1, 30, "the copy skipped")
            stop.set()
            await asyncio.wait_for(run, 30)
    assert len(sub.received) == before
    print(f"file dropped -> the held SIM's alert: {alert_after:.1f} s")


async def _at_least(query: object, n: int) -> bool:
    return len(await query()) >= n  # type: ignore[operator]


async def test_a_probe_test_naming_a_sim_makes_its_imei_siblings_suspects(tmp_path: Path) -> None:
    """A probe test names one SIM of a box whose SIMs made too few calls to be scored: the SIMs
    seen on its IMEI become `simbox_sibling` findings and cases of their own."""
    from gateway.calls.cdr import Cdr, RecordType
    from gateway.probes.simbox import Finding, Outcome

    inbox = tmp_path / "cdr"
    inbox.mkdir()
    sims = ["77470000901", "77470000902", "77470000903"]
    start = time.time() - 3600
    records = [
        Cdr(RecordType.MOC, start + 60 * i, 40.0, f"4010200000009{i % 3:02d}", "86723503000011",
            sims[i % 3], sims[i % 3], f"7705{i:07d}", lac=7, cell=4242, record_id=f"m:{i}")
        for i in range(9)  # three calls each: below min_calls, nobody is scored
    ]  # fmt: skip
    write_records(records, tmp_path / "box.csv")
    cfg = GatewayConfig(data_dir=tmp_path / "data")
    cfg.mqtt.enabled = False
    cfg.cases.interval = 0.2
    cfg.calls.enabled, cfg.calls.inbox, cfg.calls.scan_interval = True, str(inbox), 0.2
    gateway, stop = Gateway(cfg), asyncio.Event()
    run = asyncio.create_task(gateway.run(stop))
    await asyncio.wait_for(gateway.ready.wait(), 30)
    assert gateway.calls is not None and gateway.workflow is not None
    calls, cases = gateway.calls, gateway.workflow.cases
    (tmp_path / "box.csv").rename(inbox / "box.csv")
    await wait_until(lambda: calls.service.records == 9, 30, "the records read")
    assert calls.service.found == {}
    gateway._probe_finding(
        Finding(Outcome.SIMBOX, "almaty-1", time.time(), "+" + sims[0], 1, None, number=sims[0])
    )
    await wait_until(lambda: calls.service.found.get("simbox_sibling") == 2, 30, "siblings")

    async def opened() -> set[str]:
        found = await cases.list(CaseFilter(source=Source.DETECTION_SIMBOX, limit=10))
        return {n for v in found for n in v.numbers}

    await wait_until(lambda: _has(opened, {"+" + sims[1], "+" + sims[2]}), 30, "their cases")
    # the counters an operator scrapes (docs/operations.md)
    from gateway.metrics.collector import GatewayCollector

    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for m in GatewayCollector(gateway, None)._calls()  # type: ignore[arg-type]
        if m.name.startswith("fraudgate_calls")
        for s in m.samples
    }
    new_from_inbox = (("outcome", "new"), ("source", "inbox"))
    assert samples[("fraudgate_calls_records_total", new_from_inbox)] == 9
    assert samples[("fraudgate_calls_files_total", (("outcome", "read"),))] == 1
    assert samples[("fraudgate_calls_findings_total", (("kind", "simbox_sibling"),))] == 2
    assert samples[("fraudgate_calls_tracked", (("what", "sims"),))] == 3
    stop.set()
    await asyncio.wait_for(run, 30)


async def _has(query: object, wanted: set[str]) -> bool:
    return wanted <= await query()  # type: ignore[operator]
