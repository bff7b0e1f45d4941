"""End to end: a test-call partner places announced calls to two probe modems (the modem
simulator on real ptys); a grey carrier terminates some of them through a SIM box. The gateway
(its modem driver, probe manager, SQLite store and outbox) must name exactly the SIM box's SIMs
on a real mosquitto, raise route alerts for stripped and lost calls, and nothing for clean ones."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from jsonschema import Draft202012Validator
from test_mqtt import SCHEMA_PATH, Received, Subscriber, wait_until

from gateway.config import GatewayConfig
from gateway.daemon import Gateway
from gateway.probes.settings import ProbeSettings
from gateway.probes.simbox import Finding
from gateway.store import Store
from simulators.modem import ModemProfile, ModemSimulator
from simulators.simbox import SIMBOX_SIMS, Partner, PlannedTest

if TYPE_CHECKING:
    from fixtures_services import MosquittoBroker


def probe_alerts(sub: Subscriber) -> list[Received]:
    return [a for a in sub.alerts() if a.topic.rsplit("/", 1)[-1] in ("simbox", "route")]


async def test_simbox_sims_are_named_on_mqtt_and_clean_calls_raise_nothing(
    mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    validator = Draft202012Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))
    profiles = {
        "almaty-1": ModemProfile(imsi="401021111111111", msisdn="+77011110001"),
        "astana-1": ModemProfile(
            imsi="401771111111112",
            msisdn="+77771110002",
            operator="Beeline KZ",
            operator_numeric="40177",
        ),
    }
    # one test every 1.2 s, alternating probes: each probe's windows (2 s) do not overlap
    partner = Partner(list(profiles), window=2.0, sms_share=0.0, seed=11)
    tests = partner.plan(10, start=time.time() + 3.0, spacing=1.2)
    routes = Counter(t.route for t in tests)
    assert routes["simbox"] >= 2 and routes["clean"] >= 2  # the seed gives a useful mix
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "partner.json").write_text(partner.plan_file(), encoding="utf-8")

    found: list[Finding] = []
    sim1 = ModemSimulator(profiles["almaty-1"], name="almaty-1", link_dir=tmp_path)
    sim2 = ModemSimulator(profiles["astana-1"], name="astana-1", link_dir=tmp_path)
    async with sim1 as p1, sim2 as p2:
        cfg = GatewayConfig(data_dir=tmp_path / "data")
        cfg.mqtt.port = mosquitto.port
        cfg.probes.plans = [plans]
        cfg.probes.grace = 1.0
        cfg.probes.probes = [
            ProbeSettings("almaty-1", p1.url, poll_interval=0.5),
            ProbeSettings("astana-1", p2.url, poll_interval=0.5),
        ]
        stop = asyncio.Event()
        gateway = Gateway(cfg, on_finding=found.append)
        async with Subscriber(mosquitto.port) as sub:
            run = asyncio.create_task(gateway.run(stop))
            await asyncio.wait_for(gateway.ready.wait(), 30)
            await wait_until(
                lambda: all(h.registered for h in gateway.probes.health.values()),  # type: ignore[union-attr]
                15, "probes up",
            )  # fmt: skip
            placed: dict[str, float] = {}

            def mark(t: PlannedTest) -> None:
                placed[t.expected.id] = time.time()

            await partner.place(
                tests, {"almaty-1": p1, "astana-1": p2}, clock=time.time, ring_interval=0.3,
                on_placed=mark,
            )  # fmt: skip
            await wait_until(lambda: len(found) == len(tests), 30, "one finding per test")
            expected_alerts = len(tests) - routes["clean"]
            await wait_until(lambda: len(probe_alerts(sub)) >= expected_alerts, 15, "alerts")
            await asyncio.sleep(0.5)  # nothing more may come
            stop.set()
            await asyncio.wait_for(run, 30)
        # the probes hung up each call once its caller ID was read
        assert any(c.upper().startswith(("ATH", "AT+CHUP")) for c in p1.commands + p2.commands)

    outcomes = Counter(f.outcome.value for f in found)
    assert outcomes == partner.expected_outcomes()
    alerts = probe_alerts(sub)
    assert len(alerts) == expected_alerts  # clean calls raised nothing
    for a in sub.alerts():  # these and the cases the SIM-box findings opened
        validator.validate(a.body)
    assert {a.topic for a in sub.alerts()} <= {
        "fraudgate/alerts/simbox", "fraudgate/alerts/route", "fraudgate/alerts/case",
    }  # fmt: skip
    simbox = [a.body for a in alerts if a.topic == "fraudgate/alerts/simbox"]
    named = {a["number"] for a in simbox}
    used = {t.cli.lstrip("+") for t in tests if t.route == "simbox"}
    assert named == used and named <= {s.lstrip("+") for s in SIMBOX_SIMS}
    # from the call reaching the probe to the alert at the subscriber
    delays = [a.at - placed[a.body["test_id"]] for a in alerts if a.body["outcome"] == "simbox"]
    print(f"simbox alert delays: max {max(delays):.3f} s over {len(delays)} calls")
    assert max(delays) < 3.0
    route = Counter(a.body["outcome"] for a in alerts if a.topic == "fraudgate/alerts/route")
    assert route == Counter({"cli_missing": routes["stripped"], "no_arrival": routes["lost"]})
    probe_status = [r for r in sub.received if r.topic.startswith("fraudgate/probes/")]
    assert {r.topic for r in probe_status} == {
        "fraudgate/probes/almaty-1",
        "fraudgate/probes/astana-1",
    }
    assert all("401021111111111" not in json.dumps(r.body) for r in probe_status)

    async with await Store.open(cfg.database_url) as store:
        rows = await store.simbox_numbers()
        assert {r["number"] for r in rows} == used
        per_number = Counter(t.cli.lstrip("+") for t in tests if t.route == "simbox")
        assert {r["number"]: r["sightings"] for r in rows} == dict(per_number)
