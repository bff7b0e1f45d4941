"""Call records to the real core (issue 18): CDRs showing a SIM box's SIM are dropped in the
gateway's inbox; the gateway (config/lab-gateway.toml: the Osmocom switch) opens a case for it;
an analyst confirms; under the subscriber policy every number of its holder is blocked in the
real osmo-hlr, and their attached phones lose service (their next attach is rejected)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import OsmoLab

from gateway.calls.cdr import Cdr, RecordType
from gateway.cases import Actor, CaseFilter, Source, State, SuspendScope
from gateway.daemon import Gateway
from gateway.iin import iin_check_digit
from gateway.osmocom.ctrl import CtrlClient
from gateway.registry import Registry
from gateway.store import Store
from simulators.cdr import write_records
from simulators.osmo.lab import PROJECT_DIR
from simulators.osmo.lab_scenario import lab_gateway_config
from simulators.osmo.mme import VirtualMme
from simulators.osmo.provision import LabSubscriber, provision

pytestmark = pytest.mark.interop

AIGERIM = LabSubscriber("001010000000001", "77010000001", name="aigerim")
SIM_A = LabSubscriber("001010000000666", "77470000666", name="simbox-a")
OTHER = LabSubscriber("001010000000667", "77470000667", name="holder-other")
ANALYST = Actor("a.nurlanova", "analyst")
GATEWAY_IMEI = "86723503000011"  # one module of a SIM-box gateway


def iin() -> str:
    for serial in range(2000, 3000):
        first = f"9001153{serial:04d}"
        digit = iin_check_digit(first)
        if digit is not None:
            return first + str(digit)
    raise AssertionError("no serial with a check digit")  # pragma: no cover


def simbox_night(start: float) -> list[Cdr]:
    """Three SIMs taking turns in one gateway module through a night, SIM_A among them: calls to
    a new number each time, one cell, nothing incoming, no SMS, no data."""
    sims = [(SIM_A.imsi, SIM_A.msisdn), ("001010000000901", "77470000901"),
            ("001010000000902", "77470000902")]  # fmt: skip
    out, t = [], start
    for i in range(90):
        imsi, msisdn = sims[(i // 10) % 3]
        out.append(Cdr(RecordType.MOC, t, 70.0, imsi, GATEWAY_IMEI, msisdn, msisdn,
                       f"7705{i:07d}", lac=7, cell=4242, record_id=f"lab-msc:{i}"))  # fmt: skip
        t += 70.0 + 15.0
    return out


async def test_a_simbox_found_in_cdrs_loses_every_number_of_its_holder_on_the_core(
    osmo_lab: OsmoLab, mosquitto: Any, tmp_path: Path
) -> None:
    lab = await osmo_lab(smpp_first=True)
    async with CtrlClient(lab.cfg.host, lab.hlr_ctrl) as ctrl:
        await provision(ctrl, [AIGERIM, SIM_A, OTHER])
    cfg = lab_gateway_config(
        PROJECT_DIR / "config" / "lab-gateway.toml", lab.cfg, mosquitto.port, tmp_path / "gw"
    )
    cfg.cases = dataclasses.replace(
        cfg.cases, interval=0.2, suspend_scope=SuspendScope.SUBSCRIBER.value,
        suspend_scope_reason="lab: a SIM box's holder loses every number",
    )  # fmt: skip
    inbox = tmp_path / "cdr"
    inbox.mkdir()
    cfg.calls.enabled, cfg.calls.inbox, cfg.calls.scan_interval = True, str(inbox), 0.2
    async with await Store.open(cfg.database_url) as store:
        await store.migrate()
        registry = Registry(store)
        person = iin()
        await registry.register_person(person, "Тестов", "Ерлан")
        for sub in (SIM_A, OTHER):
            await registry.register_number(person, sub.msisdn, imsi=sub.imsi,
                                           contract_date=dt.date(2020, 1, 1))  # fmt: skip
    local = dt.timezone(dt.timedelta(hours=5))
    night = dt.datetime.now(local).replace(hour=1, minute=0, second=0, microsecond=0)
    if night.timestamp() > time.time():
        night -= dt.timedelta(days=1)
    part = tmp_path / "lab-msc.csv.part"
    write_records(simbox_night(night.timestamp()), part)

    gateway, stop = Gateway(cfg), asyncio.Event()
    run = asyncio.create_task(gateway.run(stop))
    try:
        await asyncio.wait_for(gateway.ready.wait(), 15)
        async with VirtualMme(lab.cfg.host, lab.cfg.sgs_port) as mme:
            phones = [mme.phone(s.imsi, s.msisdn) for s in (AIGERIM, SIM_A, OTHER)]
            for phone in phones:
                assert (await phone.attach()).accepted
            part.rename(inbox / "lab-msc.csv")
            assert gateway.workflow is not None
            cases = gateway.workflow.cases

            async def the_case() -> list[Any]:
                found = await cases.list(CaseFilter(source=Source.DETECTION_SIMBOX, limit=50))
                return [c for c in found if list(c.numbers) == ["+" + SIM_A.msisdn]]

            deadline = time.monotonic() + 30
            while not await the_case():
                assert time.monotonic() < deadline, "no SIM-box case from the CDRs"
                await asyncio.sleep(0.1)
            [case] = await the_case()
            assert case.person_id is not None
            await cases.start_verification(case.id, ANALYST, "CDRs reviewed")
            view = await cases.confirm(case.id, ANALYST, "SIM box: one module, three SIMs")
            assert view.state is State.SUSPENDED
            # both numbers of the holder are barred in the real HLR: their next attach fails
            for sub, phone in ((SIM_A, phones[1]), (OTHER, phones[2])):
                again = await phone.attach()
                assert not again.accepted and again.cause == 3, (sub.msisdn, again)
            assert (await phones[0].attach()).accepted  # others keep their service
    finally:
        stop.set()
        await asyncio.wait_for(run, 30)
