"""Several gateway nodes bound to one SMSC share their detector state through a real Redis
(docs/operations.md "Several nodes"): three nodes decide what one node decides on the same
traffic — a SIM farm's fan-out from one number, and one template from rotating SIMs — and
without the shared state they would not (the control). Redis down: every node keeps
inspecting on its own windows, nothing is lost.

Real parts: the simulated SMSC over loopback (it spreads deliver_sm over an account's binds),
PostgreSQL (one database for all nodes), redis-server, the gateways in this process."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import Counter
from pathlib import Path

import pytest
from harness import Running, eventually, gateway_config, send, smsc_config, start_gateway, submit

from gateway.config import GatewayConfig
from gateway.domain import Decision, Inspected
from smsc.constants import Tag
from smsc.pdu import SubmitSm, Tlv
from smsc.simulator import SimulatedSmsc

FARM = "77011230001"  # one SIM reaching many subscribers (fan-out)
TEMPLATE = "Ваш приз {n} тг ждёт вас. Заберите до {d}.12: prize-kz.top/p{n}"


def scenario() -> list[tuple[str, str, str]]:
    """(source, destination, text): 45 plain texts from one number to 45 subscribers, then one
    template from 8 rotating SIMs to 4 subscribers each."""
    out = [(FARM, f"7702{i:07d}", "Перезвоните мне по поводу объявления, пожалуйста")
           for i in range(45)]  # fmt: skip
    for i in range(32):
        sim, rcpt = i % 8, i
        out.append((f"7705{sim:07d}", f"7707{rcpt:07d}", TEMPLATE.format(n=1000 + i, d=10 + i % 9)))
    return out


def node_config(
    port: int, data_dir: Path, store_url: str, redis_url: str, node: str
) -> GatewayConfig:
    cfg = gateway_config(port, data_dir, store_url)
    cfg.smsc = [s for s in cfg.smsc if s.esme.system_id == "gw-p2p"]
    if redis_url:
        cfg.shared = type(cfg.shared)(
            redis_url=redis_url, node=node, timeout=1.0, retry_after=0.3, pseudonym_key="test"
        )
    return cfg


async def run_nodes(
    tmp: Path, store_url: str, redis_url: str, nodes: int, out: list[Running] | None = None
) -> list[Inspected]:
    """The scenario through `nodes` gateways; `out` receives them (stopped) for a look."""
    async with SimulatedSmsc(smsc_config(window=10)) as smsc:
        running = [
            await start_gateway(
                node_config(smsc.port, tmp / f"n{i}", store_url, redis_url, f"n{i}")
            )
            for i in range(nodes)
        ]
        try:
            traffic = scenario()
            for src, dst, text in traffic:
                assert await send(smsc.port, "subs", submit(src, dst, text)) == [0]
            await eventually(lambda: sum(len(r.inspected) for r in running) >= len(traffic), 30)
            await smsc.wait_idle()
        finally:
            for r in running:
                await r.finish()
        if nodes > 1:  # the SMSC spread the traffic: every node inspected some of it
            assert all(r.inspected for r in running), [len(r.inspected) for r in running]
        if out is not None:
            out.extend(running)
        return [i for r in running for i in r.inspected]


def tally(inspected: list[Inspected]) -> dict[str, int]:
    out: Counter[str] = Counter(i.verdict.decision.value for i in inspected)
    for i in inspected:
        for rule in {r.rule_id for r in i.verdict.reasons}:
            if rule.startswith(("velocity.sender.fanout", "campaign.simfarm")):
                out[rule] += 1
    out["fanout alerts"] = sum(1 for i in inspected for a in i.alerts if a.kind.value == "fanout")
    out["campaign alerts"] = sum(
        1 for i in inspected for a in i.alerts if a.kind.value == "campaign"
    )
    return dict(out)


async def test_three_nodes_decide_what_one_node_decides(
    tmp_path: Path, postgres_url: str, redis_server, postgres_server
) -> None:
    one = tally(await run_nodes(tmp_path / "one", postgres_url, "", 1))
    print("one node:", one)
    assert one["velocity.sender.fanout"] == 45 - 20  # every message past the 20th recipient
    assert one["campaign.simfarm"] > 0 and one["fanout alerts"] == 1 and one["campaign alerts"] >= 1
    db2 = postgres_server.url(postgres_server.create_database())
    three = tally(await run_nodes(tmp_path / "three", db2, redis_server.url, 3))
    print("three nodes sharing Redis:", three)
    for key, value in one.items():  # the bound: within 1 %
        assert abs(three.get(key, 0) - value) <= value / 100, (key, value, three)
    db3 = postgres_server.url(postgres_server.create_database())
    alone = tally(await run_nodes(tmp_path / "alone", db3, "", 3))
    print("three nodes without Redis:", alone)  # the control: each sees a third of the farm
    assert alone.get("velocity.sender.fanout", 0) < one["velocity.sender.fanout"]
    assert alone.get("campaign.simfarm", 0) < one["campaign.simfarm"]


async def test_redis_down_every_node_keeps_inspecting_alone(
    tmp_path: Path, postgres_url: str, redis_server
) -> None:
    redis_server.stop()
    nodes: list[Running] = []
    inspected = await run_nodes(tmp_path, postgres_url, redis_server.url, 2, nodes)
    assert len(inspected) == len(scenario())  # nothing lost, nothing waited for Redis
    batchers = [n.gateway.shared for n in nodes]
    assert all(b is not None and not b.up for b in batchers)
    # every message judged on its node's own windows, none counted in the shared store
    assert sum(b.local for b in batchers if b) == len(inspected)
    assert sum(b.messages for b in batchers if b) == 0


async def test_redis_lost_and_back_mid_stream(
    tmp_path: Path, redis_server, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis killed while a node runs: the node judges on its own windows (kept up to date all
    along), says so once, and counts with the others again once Redis is back."""
    caplog.set_level(logging.INFO, logger="fraudgate.shared")
    traffic = scenario()
    async with SimulatedSmsc(smsc_config(window=10)) as smsc:
        node = await start_gateway(node_config(smsc.port, tmp_path, "", redis_server.url, "n0"))
        shared = node.gateway.shared
        assert shared is not None
        try:
            for part, (start, end) in enumerate(((0, 20), (20, 50), (50, len(traffic)))):
                if part == 1:
                    redis_server.kill()
                elif part == 2:
                    redis_server.start()
                    await asyncio.sleep(0.4)  # retry_after
                for src, dst, text in traffic[start:end]:
                    assert await send(smsc.port, "subs", submit(src, dst, text)) == [0]
                await eventually(lambda e=end: len(node.inspected) >= e, 20)
                if part == 1:
                    assert not shared.up and shared.local > 0
            assert shared.up and shared.messages > 0
        finally:
            await node.finish()
    assert len(node.inspected) == len(traffic)
    said = [r.getMessage() for r in caplog.records if r.name == "fraudgate.shared"]
    # the outage said once (30 messages judged alone meanwhile), its end once
    assert sum("shared state unreachable" in m for m in said) == 1, said
    assert sum("reachable again" in m for m in said) == 1, said
    fanout = [i for i in node.inspected if any(r.rule_id == "velocity.sender.fanout"
                                               for r in i.verdict.reasons)]  # fmt: skip
    # the farm's 45 recipients: crossed at the 21st whether Redis or the node's windows counted
    assert len(fanout) == 45 - 20
    exposition = node.gateway.metrics.exposition().decode()
    assert 'fraudgate_shared_messages_total{counted="local"}' in exposition
    assert "fraudgate_shared_state_up 1.0" in exposition


LONG_FRAUD = ("Уважаемый клиент! Ваша карта Kaspi Gold заблокирована из-за подозрительной операции "
              "на сумму {n} тенге. Для разблокировки срочно перейдите по ссылке kaspi-kz.secure-"
              "verify.top/{n} и введите код из SMS. Служба безопасности банка.")  # fmt: skip
LONG_PLAIN = ("Привет! Завтра в {n} часов собираемся у бабушки, не забудь взять торт и цветы. "
              "Папа заедет за тобой после работы, жди у подъезда. Если задержишься, позвони мне "
              "заранее, пожалуйста, чтобы мы не волновались. Целую, мама.")  # fmt: skip


async def test_the_parts_of_a_long_message_meet_across_nodes(tmp_path: Path, redis_server) -> None:
    """An SMSC spreads a long message's parts over the nodes' binds: they meet in Redis, the
    node with the last part judges the whole text once, and every part, wherever it is, gets
    that node's answer at once (not after the reassembly timeout)."""
    texts = [(LONG_FRAUD if i % 2 else LONG_PLAIN).format(n=10 + i) for i in range(20)]
    async with SimulatedSmsc(smsc_config(window=10)) as smsc:
        cfgs = [node_config(smsc.port, tmp_path / f"n{i}", "", redis_server.url, f"n{i}")
                for i in range(2)]  # fmt: skip
        for cfg in cfgs:
            cfg.reassembly_timeout = 20.0  # an answer after this would show a part left waiting
        nodes = [await start_gateway(cfg) for cfg in cfgs]
        started = asyncio.get_running_loop().time()
        try:
            parts = 0
            for i, text in enumerate(texts):
                pdus = submit(f"7705{i:07d}", f"7706{i:07d}", text)
                if i % 4 == 0:  # concatenated by sar_* TLVs instead of a UDH
                    pdus = as_sar(pdus, ref=200 + i)
                assert len(pdus) >= 3
                parts += len(pdus)
                assert await send(smsc.port, "subs", pdus) == [0] * len(pdus)
            await eventually(lambda: smsc.pending() == 0, 15)
            took = asyncio.get_running_loop().time() - started
        finally:
            for node in nodes:
                await node.finish()
    inspected = [i for node in nodes for i in node.inspected]
    assert sorted(i.sms.text for i in inspected) == sorted(texts)  # each whole, once
    assert all(i.sms.complete for i in inspected)
    shared_parts = [n.gateway.shared.parts for n in nodes if n.gateway.shared is not None]
    assert sum(p.answered_remote for p in shared_parts if p is not None) > 0  # spread, met
    assert all(n.inspected for n in nodes)
    blocked = sum(1 for i in inspected if i.verdict.decision is Decision.BLOCK)
    assert blocked >= 5, [i.verdict for i in inspected]
    refused_parts = sum(i.sms.parts for i in inspected if i.verdict.decision is Decision.BLOCK)
    assert smsc.stats.failed == refused_parts  # every part of a blocked message refused
    assert smsc.stats.delivered == parts - refused_parts
    assert took < 10.0, took  # no part waited for the 20 s reassembly timeout


def as_sar(pdus: list[SubmitSm], ref: int) -> list[SubmitSm]:
    """The same parts concatenated by sar_* TLVs (SMPP 3.4 §5.3.2.22-24), the UDH removed."""
    out = []
    for seq, pdu in enumerate(pdus, 1):
        body = pdu.short_message[pdu.short_message[0] + 1 :]
        tlvs = [Tlv.of(Tag.SAR_MSG_REF_NUM, ref), Tlv.of(Tag.SAR_TOTAL_SEGMENTS, len(pdus)),
                Tlv.of(Tag.SAR_SEGMENT_SEQNUM, seq)]  # fmt: skip
        out.append(dataclasses.replace(pdu, short_message=body, esm_class=0, tlvs=tlvs))
    return out


async def test_a_label_given_on_one_node_blocks_the_copies_another_node_sees(
    tmp_path: Path, redis_server
) -> None:
    """A complaint labels a campaign on the node that runs the workflow; the other node learns
    the label from Redis and blocks the copies it receives, as one node would."""
    async with SimulatedSmsc(smsc_config(window=10)) as smsc:
        nodes = [
            await start_gateway(node_config(smsc.port, tmp_path / f"n{i}", "", redis_server.url,
                                            f"n{i}"))
            for i in range(2)
        ]  # fmt: skip
        try:
            labelled = TEMPLATE.format(n=1, d=10)
            nodes[0].gateway.inspector.label_campaign(labelled, "complaint", time.time())
            warm = 0
            while not all(n.inspected for n in nodes):  # each node has done a round trip
                warm += 1
                assert warm < 40, "the SMSC did not spread the traffic"
                text = f"Встречаемся в {warm % 12 + 8}:00 у входа, не опаздывай"
                assert await send(smsc.port, "subs", submit(f"7708{warm:07d}", "77090000001",
                                                            text)) == [0]  # fmt: skip
                await eventually(lambda w=warm: sum(len(n.inspected) for n in nodes) >= w, 10)
            copies = [TEMPLATE.format(n=2000 + i, d=11 + i % 8) for i in range(12)]
            for i, text in enumerate(copies):
                assert await send(smsc.port, "subs", submit(f"7704{i:07d}", f"7703{i:07d}",
                                                            text)) == [0]  # fmt: skip
            await eventually(lambda: sum(len(n.inspected) for n in nodes) >= warm + len(copies))
        finally:
            for n in nodes:
                await n.finish()
    seen = [i for i in nodes[1].inspected if i.sms.text in copies]
    assert seen, "no copy reached the node that did not label"
    for i in seen:
        assert "campaign.labelled.complaint" in {r.rule_id for r in i.verdict.reasons}, i.verdict
        assert i.verdict.decision is Decision.BLOCK
