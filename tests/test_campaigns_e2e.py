"""A SIM-farm campaign through the running gateway (simulated SMSC -> gateway -> mosquitto):
one lure with names, order numbers and link paths varied, from 60 rotating SIMs, each far
under the per-sender fan-out limit, that no rule or the classifier stops on its own.

Recognised after a bounded number of messages, then flagged; one complaint to the short
number about any of its messages labels the whole campaign at once, and every later message
is blocked (rejected, enforcing); `campaign` alerts reach a real subscriber, valid against the
documented schema; the label survives a restart of the gateway."""

from __future__ import annotations

import asyncio
import json
import random
import time
from pathlib import Path
from typing import Any

import jsonschema
from harness import Subscriber, eventually, gateway_config, send, smsc_config, start_gateway, submit

from gateway.domain import Decision
from smsc.simulator import SimulatedSmsc

ROOT = Path(__file__).resolve().parent.parent
NAMES = ["Айгерим", "Данияр", "Асель", "Ерлан", "Марина", "Сергей", "Алия", "Тимур", "Дина"]


def lure(rng: random.Random) -> str:
    return (
        f"{rng.choice(NAMES)}, ваш заказ №{rng.randint(10000, 99999)} ожидает выдачи. "
        f"Детали и трек: wb-punkt.shop/{rng.randint(100, 999)}x"
    )


async def test_a_sim_farm_campaign_is_recognised_labelled_by_one_complaint_and_remembered(
    tmp_path: Path, mosquitto: Any
) -> None:
    rng = random.Random(7)
    sub = Subscriber(mosquitto.host, mosquitto.port)
    sub_task = asyncio.create_task(sub.run())
    await asyncio.wait_for(sub.ready.wait(), 10)
    async with SimulatedSmsc(smsc_config()) as sim:
        cfg = gateway_config(sim.port, tmp_path, "", mosquitto)  # enforcing, SQLite
        gw = await start_gateway(cfg)
        # 60 SIMs, 3 recipients each, interleaved as a farm rotates them
        sent: list[tuple[str, str, str]] = [
            (f"7705{sim_no:07d}", f"7701{sim_no * 3 + k:07d}", lure(rng))
            for k in range(3)
            for sim_no in range(60)
        ]
        for source, dest, text in sent:
            await send(sim.port, "subs", submit(source, dest, text))
        await asyncio.wait_for(sim.wait_idle(), 30)
        verdicts = [i.verdict for i in gw.inspected]
        flagged = [v.decision is not Decision.ALLOW for v in verdicts]
        first = flagged.index(True)
        assert first <= 30, first  # recognised within the first 30 messages (measured: 20)
        assert all("campaign.simfarm" in v.rule_ids for v in verdicts[first:])
        assert sum(flagged[first:]) >= 0.95 * len(flagged[first:])
        assert not any(v.decision is Decision.BLOCK for v in verdicts)  # counts alone: flag

        # one subscriber forwards one of the messages to the complaint number
        before = len(gw.inspected)
        complained = time.monotonic()
        await send(sim.port, "subs", submit("77019990000", "1490", sent[5][2]))
        more = [("7705" + f"{100 + i:07d}", f"7702{i:07d}", lure(rng)) for i in range(10)]
        for source, dest, text in more:
            await send(sim.port, "subs", submit(source, dest, text))
        await asyncio.wait_for(sim.wait_idle(), 30)
        after = gw.inspected[before:]
        assert after[0].complaint is not None
        first_blocked = after[1]
        assert first_blocked.verdict.decision is Decision.BLOCK
        assert "campaign.labelled.complaint" in first_blocked.verdict.rule_ids
        assert time.monotonic() - complained < 10  # the whole exchange; the label is inline
        assert all(i.verdict.decision is Decision.BLOCK for i in after[1:])
        later = {source for source, _, _ in more}
        rejected = [m for m in sim.messages.values() if m.source in later]
        assert len({m.source for m in rejected}) == 10
        assert all(m.error == 0x66 for m in rejected)  # rejected: never delivered

        await eventually(
            lambda: {a.get("event") for a in sub.alerts if a["kind"] == "campaign"}
            >= {"recognised", "labelled"}
        )
        await gw.finish()

        # a restart: the label comes back from the database with the campaign's state
        gw = await start_gateway(cfg)
        await send(sim.port, "subs", submit("77059990001", "77030000001", lure(rng)))
        await asyncio.wait_for(sim.wait_idle(), 30)
        assert gw.inspected[-1].verdict.decision is Decision.BLOCK
        assert "campaign.labelled.complaint" in gw.inspected[-1].verdict.rule_ids
        await gw.finish()
    sub_task.cancel()
    campaign = [a for a in sub.alerts if a["kind"] == "campaign"]
    schema = json.loads((ROOT / "docs" / "mqtt-alert.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    for alert in campaign:
        validator.validate(alert)
        assert "7705" not in json.dumps(alert, ensure_ascii=False)  # no sender's number
    labelled = [a for a in campaign if a["event"] == "labelled"]
    assert labelled[0]["label"] == "complaint" and labelled[0]["senders"] >= 50
    assert len({a["id"] for a in campaign}) == len({(a["event"], a["label"]) for a in campaign})
