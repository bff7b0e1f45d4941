"""The probe manager with a real store, a real outbox dispatcher and a real mosquitto.

The probes here are scripted runners feeding the manager the events a modem driver produces
(the driver itself is tested against the modem simulator over a pty in test_modem_driver.py,
and the whole chain end to end in test_simbox_e2e.py)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from test_mqtt import SCHEMA_PATH, Subscriber, config, dispatcher, wait_until

from gateway.probes.manager import HealthLimits, ProbeManager
from gateway.probes.simbox import Expected, Outcome
from gateway.store import Store, sqlite_url
from gsm_probe.events import IncomingCall, ProbeEvent, ProbeHealth, SmsReceived
from smsc.backoff import Backoff

if TYPE_CHECKING:
    from fixtures_services import MosquittoBroker

DE = "+4915112345678"


class ScriptedProbe:
    """Stands in for a ModemSupervisor: reports health, then whatever the test injects."""

    def __init__(
        self,
        name: str,
        on_event: Callable[[ProbeEvent], None],
        on_health: Callable[[ProbeHealth], None],
    ) -> None:
        self.name, self.on_event, self.on_health = name, on_event, on_health
        self._stop = asyncio.Event()

    async def run(self) -> None:
        self.on_health(
            ProbeHealth(
                self.name,
                True,
                True,
                1,
                -71,
                "KZ KCELL",
                "1A2B",
                "C3D4",
                "867584030123456",
                "401021234567890",
                "+77011110000",
            )
        )
        await self._stop.wait()

    def stop(self) -> None:
        self._stop.set()


def validators() -> tuple[Draft202012Validator, Draft202012Validator]:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    registry: Registry[Any] = Registry().with_resource(
        schema["$id"], Resource.from_contents(schema)
    )
    status = Draft202012Validator(
        {"$ref": schema["$id"] + "#/$defs/probe_status"}, registry=registry
    )
    return Draft202012Validator(schema), status


async def test_simbox_call_is_alerted_within_seconds_and_health_is_retained(
    mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    alert_v, status_v = validators()
    store = await Store.open(sqlite_url(tmp_path))
    await store.migrate()
    runners: dict[str, ScriptedProbe] = {}

    def make(name: str, on_event: Any, on_health: Any) -> ScriptedProbe:
        runners[name] = ScriptedProbe(name, on_event, on_health)
        return runners[name]

    now = time.time()
    plan = tmp_path / "plan.toml"
    plan.write_text(
        "".join(
            f'[[test]]\nid = "t{i}"\nprobe = "{probe}"\na_number = "{a}"\nkind = "{kind}"\n'
            f'start = {now - 5}\nend = {now + end}\nroute = "carrier-{i}"\n'
            for i, (probe, a, kind, end) in enumerate(
                [
                    ("p1", DE, "call", 60),
                    ("p2", DE, "call", 60),
                    ("p1", "KaspiBank", "sms", 60),
                    ("p2", "+905321234567", "call", 0.5),  # never placed: no_arrival
                ]
            )
        ),
        encoding="utf-8",
    )
    cfg = config(mosquitto.port)
    async with store, Subscriber(mosquitto.port) as sub, dispatcher(store, cfg) as d:
        manager = ProbeManager(
            ["p1", "p2"], store, d, make, plans=[plan], grace=0.5, topic=cfg.probe_topic
        )
        task = asyncio.create_task(manager.run())
        await wait_until(lambda: len(runners) == 2, what="probes started")
        started = time.monotonic()
        runners["p1"].on_event(IncomingCall("p1", "+77011234567", 145, 0, time.time()))
        runners["p2"].on_event(IncomingCall("p2", DE, 145, 0, time.time()))  # clean
        runners["p1"].on_event(
            SmsReceived("p1", "+77051234567", 1, "Ваш код: 4821", at=time.time())
        )
        await wait_until(lambda: len(sub.alerts()) >= 3, 10, "simbox, simfarm, no_arrival")
        elapsed = time.monotonic() - started
        manager.stop()
        await task

    alerts = {r.body["outcome"]: r for r in sub.alerts()}
    assert set(alerts) == {"simbox", "simfarm", "no_arrival"}  # the clean call raised none
    assert elapsed < 5  # within seconds of the call (the no_arrival waits out its window)
    simbox = alerts["simbox"]
    assert simbox.topic == "fraudgate/alerts/simbox" and simbox.body["number"] == "77011234567"
    assert simbox.body["route"] == "carrier-0" and simbox.body["test_kind"] == "call"
    assert alerts["no_arrival"].topic == "fraudgate/alerts/route"
    assert alerts["simfarm"].body["number"] == "77051234567"
    for r in sub.alerts():
        alert_v.validate(r.body)
    statuses = [r for r in sub.received if r.topic.startswith("fraudgate/probes/")]
    assert {r.topic for r in statuses} == {"fraudgate/probes/p1", "fraudgate/probes/p2"}
    for r in statuses:
        status_v.validate(r.body)
        assert r.retain or r.body["ok"]
        assert r.body["imsi"] == "40102******7890" and r.body["msisdn_tail"] == "0000"
        assert "401021234567890" not in str(r.body) and "77011110000" not in str(r.body)

    # retained: a subscriber arriving later learns each probe's health at once
    async with Subscriber(mosquitto.port, ["fraudgate/probes/#"]) as late:
        await wait_until(lambda: len(late.received) == 2, 5, "retained probe status")
        assert all(r.retain and r.body["ok"] and r.body["signal_dbm"] == -71 for r in late.received)

    async with await Store.open(sqlite_url(tmp_path)) as again:
        [number, farm] = sorted(await again.simbox_numbers(), key=lambda r: r["number"])
        assert number["number"] == "77011234567" and number["sightings"] == 1
        assert farm["outcome"] == "simfarm"
        outcomes = sorted(f["outcome"] for f in await again.probe_findings())
        assert outcomes == ["clean", "no_arrival", "simbox", "simfarm"]


async def test_a_finding_survives_a_database_outage(tmp_path: Path) -> None:
    """The store refuses (another writer holds the lock): the finding waits in memory and is
    recorded, with its alert, once the database is back."""
    store = await Store.open(sqlite_url(tmp_path), connect_timeout=0.2)
    await store.migrate()

    class Quiet:
        notified = 0

        def __init__(self) -> None:
            self.states: dict[str, dict[str, object]] = {}

        def notify(self) -> None:
            self.notified += 1

        def set_state(self, topic: str, payload: dict[str, object]) -> None:
            self.states[topic] = payload

    pub = Quiet()
    runners: list[ScriptedProbe] = []

    def make(name: str, on_event: Any, on_health: Any) -> ScriptedProbe:
        runners.append(ScriptedProbe(name, on_event, on_health))
        return runners[-1]

    manager = ProbeManager(["p1"], store, pub, make)
    manager.expect([Expected("p1", DE, time.time() - 1, time.time() + 60, id="t1")])
    lock = sqlite3.connect(tmp_path / "fraudgate.sqlite3", isolation_level=None)
    async with store:
        task = asyncio.create_task(manager.run())
        await wait_until(lambda: bool(runners), what="probe started")
        lock.execute("BEGIN IMMEDIATE")
        runners[0].on_event(IncomingCall("p1", "87011234567", 129, 0, time.time()))
        await wait_until(lambda: manager.findings != [], what="finding made")
        await asyncio.sleep(1.0)
        assert manager.backlog == 1 and pub.notified == 0  # waiting, not lost
        lock.execute("ROLLBACK")
        await wait_until(lambda: manager.backlog == 0, 35, "recorded after the outage")
        assert pub.notified == 1
        manager.stop()
        await task
        [row] = await store.simbox_numbers()
        assert row["number"] == "77011234567"
        assert (await store.counts())["alerts_pending"] == 1
    lock.close()
    assert manager.findings[0].outcome is Outcome.SIMBOX


async def test_a_probe_that_stays_unregistered_is_alerted_once_then_recovers(
    tmp_path: Path,
) -> None:
    store = await Store.open(sqlite_url(tmp_path))
    await store.migrate()
    states: list[dict[str, object]] = []

    class Pub:
        def notify(self) -> None:
            pass

        def set_state(self, topic: str, payload: dict[str, object]) -> None:
            states.append(payload)

    clock = [1000.0]
    manager = ProbeManager(
        ["p1"], store, Pub(), lambda *a: ScriptedProbe(*a),
        limits=HealthLimits(down_after=30), clock=lambda: clock[0],
    )  # fmt: skip
    down = ProbeHealth("p1", connected=True, registered=False, registration=3)
    async with store:
        manager.on_health(down)
        clock[0] += 10
        manager.on_health(down)
        assert manager.backlog == 0  # not yet: 10 s < down_after
        clock[0] += 25
        manager.on_health(down)
        manager.on_health(down)
        assert manager.backlog == 1  # one alert, not one per poll
        manager.on_health(ProbeHealth("p1", connected=True, registered=True, registration=1))
        assert manager.backlog == 2  # and one when it is back
        assert await manager._record(Backoff())
        pending = await store.pending_alerts(10)
    assert [a.payload["ok"] for a in pending] == [False, True]
    assert "not registered" in str(pending[0].payload["problem"])
    assert states[-1]["ok"] is True and states[0]["problem"] == "not registered (+CREG stat 3)"


async def test_plans_dropped_into_a_folder_are_picked_up(tmp_path: Path) -> None:
    store = await Store.open(sqlite_url(tmp_path / "db"))
    await store.migrate()
    folder = tmp_path / "plans"
    folder.mkdir()
    now = time.time()

    def plan(name: str, test_id: str) -> None:
        (folder / name).write_text(
            json.dumps(
                [{"id": test_id, "probe": "p1", "a_number": DE, "start": now - 1, "end": now + 600}]
            ),
            encoding="utf-8",
        )

    class Pub:
        def notify(self) -> None:
            pass

        def set_state(self, topic: str, payload: dict[str, object]) -> None:
            pass

    plan("a.json", "t-a")
    manager = ProbeManager(["p1"], store, Pub(), ScriptedProbe, plans=[folder])
    async with store:
        task = asyncio.create_task(manager.run())
        await wait_until(lambda: len(manager.matcher.open_tests) == 1, 5, "first plan")
        (folder / "broken.toml").write_text("[[test]\n", encoding="utf-8")  # logged, skipped
        plan("b.json", "t-b")
        await wait_until(lambda: len(manager.matcher.open_tests) == 2, 10, "dropped plan")
        plan("a.json", "t-a")  # rewritten unchanged: nothing announced twice
        await asyncio.sleep(2.5)
        assert sorted(t.id for t in manager.matcher.open_tests) == ["t-a", "t-b"]
        manager.stop()
        await task
