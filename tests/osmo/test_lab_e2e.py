"""The issue's proofs against the real osmo-hlr and osmo-msc, with the shipped lab configs.

- A smishing SMS from a virtual phone is stopped inline by the gateway (config/lab-gateway.toml):
  the phone gets RP-ERROR, the destination nothing, an alert reaches a mosquitto subscriber,
  and the case workflow opens a case for the local sender.
- A confirmed case suspends every number of the subscriber on the Osmocom core through the
  `SwitchControl` adapter: the attached phones lose service at once (their next SMS is released,
  their next attach rejected); unblocking gives it back.
- `fraudgate lab scenario` runs the shipped scenario with every expectation met.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import sqlalchemy as sa
from _procs import free_ports
from conftest import OsmoLab
from waiting import eventually

from gateway.cases import Actor, Cases, Policy, State, SuspendScope
from gateway.centre import CentreOutbox
from gateway.daemon import Gateway
from gateway.iin import iin_check_digit
from gateway.osmocom.ctrl import CtrlClient
from gateway.registry import Registry
from gateway.store import Store
from gateway.store.models_cases import cases as cases_table
from gateway.switch.osmocom import OsmocomSettings, OsmocomSwitch
from gateway.workdays import KzCalendar
from simulators.osmo.lab import PROJECT_DIR
from simulators.osmo.lab_scenario import lab_gateway_config
from simulators.osmo.mme import Phone, VirtualMme
from simulators.osmo.provision import LabSubscriber, provision

pytestmark = pytest.mark.interop

AIGERIM = LabSubscriber("001010000000001", "77010000001", name="aigerim")
FRAUD_A = LabSubscriber("001010000000666", "77470000666", name="fraud-a")
FRAUD_B = LabSubscriber("001010000000667", "77470000667", name="fraud-b")
SMISHING_KK = (
    "Құрметті клиент! Kaspi Gold картаңыз бұғатталды. Қаражатты сақтау үшін "
    "https://kaspi-bank.kz-secure.com/kz сілтемесі арқылы деректеріңізді растаңыз."
)
HELLO = "Сәлем! Кешке кездесеміз бе?"
GSM_TEXT = "Meet @ 19:00, bring 50€ & the_key {room 5}"  # GSM 7-bit with extension characters


def iin() -> str:
    for serial in range(1000, 2000):
        first = f"9001153{serial:04d}"
        digit = iin_check_digit(first)
        if digit is not None:
            return first + str(digit)
    raise AssertionError("no serial with a check digit")  # pragma: no cover


async def alerts_of(port: int, out: list[dict[str, Any]], ready: asyncio.Event) -> None:
    async with aiomqtt.Client("127.0.0.1", port, identifier="lab-e2e") as client:
        await client.subscribe("fraudgate/alerts/#", qos=1)
        ready.set()
        async for message in client.messages:
            out.append(json.loads(bytes(message.payload)))  # type: ignore[arg-type]


async def test_smishing_from_a_phone_is_stopped_inline(
    osmo_lab: OsmoLab, mosquitto: Any, tmp_path: Path
) -> None:
    lab = await osmo_lab(smpp_first=True)
    async with CtrlClient(lab.cfg.host, lab.hlr_ctrl) as ctrl:
        await provision(ctrl, [AIGERIM, FRAUD_A])
    cfg = lab_gateway_config(
        PROJECT_DIR / "config" / "lab-gateway.toml", lab.cfg, mosquitto.port, tmp_path / "gw"
    )
    cfg.cases.interval = 0.2
    alerts: list[dict[str, Any]] = []
    subscribed = asyncio.Event()
    listener = asyncio.create_task(alerts_of(mosquitto.port, alerts, subscribed))
    await asyncio.wait_for(subscribed.wait(), 10)
    seen: list[str] = []
    gateway, stop = Gateway(cfg, on_inspected=lambda i: seen.append(i.sms.text)), asyncio.Event()
    run = asyncio.create_task(gateway.run(stop))
    try:
        await asyncio.wait_for(gateway.ready.wait(), 15)
        await gateway.supervisors[0].wait_bound(10)
        async with VirtualMme(lab.cfg.host, lab.cfg.sgs_port) as mme:
            aigerim, fraud = (
                mme.phone(AIGERIM.imsi, AIGERIM.msisdn),
                mme.phone(FRAUD_A.imsi, FRAUD_A.msisdn),
            )
            assert (await aigerim.attach()).accepted and (await fraud.attach()).accepted

            # Three parts: the first reads as a greeting and is acknowledged (held by the
            # gateway), the bait in the later ones stops them all: nothing reaches Aigerim.
            results = await fraud.send_sms(AIGERIM.msisdn, SMISHING_KK)
            outcomes = [(r.outcome, r.rp_cause) for r in results]
            assert len(outcomes) == 3 and outcomes[-1] == ("error", 38), outcomes
            refused = sum(o == ("error", 38) for o in outcomes)
            with pytest.raises(TimeoutError):
                await aigerim.next_sms(2.0)

            # The same phone's ordinary SMS still goes through (the sender is not blocked yet).
            [ok] = await fraud.send_sms(AIGERIM.msisdn, HELLO)
            assert ok.ok, ok
            assert (await aigerim.next_sms(10)).text == HELLO
            # GSM 7-bit reaches the gateway labelled IA5: inspected as the phone wrote it
            # (`ia5_is_gsm` in config/lab-gateway.toml) and forwarded byte for byte.
            [ok] = await aigerim.send_sms(FRAUD_A.msisdn, GSM_TEXT)
            assert ok.ok, ok
            assert (await fraud.next_sms(10)).text == GSM_TEXT
            assert seen[-1] == GSM_TEXT

            await eventually(
                lambda: any(a["kind"] == "sms" and a["decision"] == "block" for a in alerts),
                what="the block alert on mosquitto",
            )
            alert = next(a for a in alerts if a["kind"] == "sms" and a["decision"] == "block")
            assert alert["smsc"] == "osmo-msc" and alert["score"] >= 0.8
            assert alert["dest"] != AIGERIM.msisdn and "*" in alert["dest"]  # masked
            assert gateway.workflow is not None
            await eventually(lambda: _cases_opened(alerts) >= 1, what="a case for the sender")
            handler = gateway.handlers[0]
            await eventually(lambda: handler.stats.receipts_matched == 2, what="the receipts")
    finally:
        stop.set()
        report = await asyncio.wait_for(run, 30)
        listener.cancel()
    st = report.stats["osmo-msc"]
    assert (st.rejected, st.held_dropped) == (refused, 3 - refused)
    assert st.forwarded == 2 and st.receipts_matched == 2


def _cases_opened(alerts: list[dict[str, Any]]) -> int:
    return sum(1 for a in alerts if a["kind"] == "case" and a.get("event") == "opened")


async def _sends(phone: Phone, to: str) -> bool:
    results = await phone.send_sms(to, HELLO, timeout=5)
    return all(r.ok for r in results)


async def test_a_confirmed_case_under_the_subscriber_policy_cuts_off_every_number_on_the_core(
    osmo_lab: OsmoLab, tmp_path: Path
) -> None:
    lab = await osmo_lab()
    async with CtrlClient(lab.cfg.host, lab.hlr_ctrl) as ctrl:
        await provision(ctrl, [AIGERIM, FRAUD_A, FRAUD_B])
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'fg.db'}")
    await store.migrate()
    registry = Registry(store)
    person_iin = iin()
    await registry.register_person(person_iin, "Тестов", "Ерлан")
    for sub in (FRAUD_A, FRAUD_B):
        await registry.register_number(person_iin, sub.msisdn, imsi=sub.imsi)
    settings = OsmocomSettings(hlr_ctrl_host=lab.cfg.host, msc_vty_host=lab.cfg.host)
    analyst = Actor("a.nurlanova", "analyst")
    try:
        async with (
            OsmocomSwitch(settings) as switch,
            VirtualMme(lab.cfg.host, lab.cfg.sgs_port) as mme,
        ):
            # point 120 suspends the number itself; this operator's policy widens it to every
            # number of the subscriber (recorded with its reason in the case)
            policy = Policy(
                suspend_scope=SuspendScope.SUBSCRIBER,
                suspend_scope_reason="lab: a SIM farm's other SIMs go with the one reported",
            )
            cases = Cases(
                store, KzCalendar(), switch=switch, registry=registry,
                reports=CentreOutbox("lab"), policy=policy,
            )  # fmt: skip
            aigerim = mme.phone(AIGERIM.imsi, AIGERIM.msisdn)
            a, b = mme.phone(FRAUD_A.imsi, FRAUD_A.msisdn), mme.phone(FRAUD_B.imsi, FRAUD_B.msisdn)
            for phone in (aigerim, a, b):
                assert (await phone.attach()).accepted
            assert await _sends(a, AIGERIM.msisdn) and await _sends(b, AIGERIM.msisdn)

            case = await cases.open(
                source="complaint", numbers=[FRAUD_A.msisdn], received_at=time.time()
            )
            await cases.start_verification(case.id, analyst)
            decided = time.monotonic()
            view = await cases.confirm(case.id, analyst, "smishing confirmed by complaint")
            assert view.state is State.SUSPENDED, view
            # Both numbers of the subscriber, not only the one complained about (the policy).
            assert "subscriber_scope" in view.flags
            assert {await switch.status(s.msisdn) for s in (FRAUD_A, FRAUD_B)} == {"blocked"}
            # Cut off now: the attached phones' next SMS is released (the VLR forgot them)...
            for phone in (a, b):
                [r] = await phone.send_sms(AIGERIM.msisdn, HELLO, timeout=5)
                assert (r.outcome, r.sgs_cause) == ("released", 3), r
            cut_off = time.monotonic() - decided
            # ... and they cannot come back: location update rejected.
            for phone in (a, b):
                again = await phone.attach()
                assert not again.accepted and again.cause == 3, again
            assert await _sends(aigerim, AIGERIM.msisdn)  # others keep their service
            print(f"decision to block -> both phones cut off: {cut_off * 1000:.0f} ms")
            assert cut_off < 5

            view = await cases.unblock(case.id, analyst, "appeal granted")
            assert {await switch.status(s.msisdn) for s in (FRAUD_A, FRAUD_B)} == {"active"}
            for phone in (a, b):
                assert (await phone.attach()).accepted
                assert await _sends(phone, AIGERIM.msisdn)
        async with store.engine.connect() as conn:
            query = sa.select(cases_table.c.state).where(cases_table.c.id == case.id)
            state = (await conn.execute(query)).scalar_one()
        assert state == view.state.value
    finally:
        await store.close()


def test_the_lab_scenario_meets_every_expectation(tmp_path: Path) -> None:
    """`fraudgate lab scenario` (lab + mosquitto + gateway from the shipped configs + phones):
    ordinary SMS delivered, smishing and the SIM farm's lure rejected at the phones."""
    smpp, sgs = free_ports(2)
    cfg = tmp_path / "lab.toml"
    cfg.write_text(
        f'[lab]\nworkdir = "{tmp_path / "lab"}"\nsmpp_port = {smpp}\nsgs_port = {sgs}\n'
        f'scenario = "{PROJECT_DIR / "config" / "scenarios" / "osmocom-lab.toml"}"\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "lab", "-c", str(cfg), "scenario"],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr[-3000:]
    assert "UNEXPECTED" not in out
    assert "Expectations: 20 met, 0 unmet" in out, out
    assert "fraudster (77470000666, fraudster): attached" in out
    assert "RP-ERROR cause 38" in out
