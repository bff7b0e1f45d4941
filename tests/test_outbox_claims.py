"""Outbox claims (gateway/store/claims.py): several nodes drain one PostgreSQL outbox and no alert
or centre report goes out twice. Real PostgreSQL, a real mosquitto broker, the centre
simulator."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa
from test_centre import CaseView, Person, link_config, notice
from test_mqtt import Subscriber, config, flagged_sms, wait_until

from gateway.alerts.dispatcher import OutboxDispatcher
from gateway.centre import CentreDispatcher, CentreOutbox, CentreReports
from gateway.store import Store, StoreError
from gateway.store.models import alerts
from simulators.centre import CentreSimulator, CertSet, make_certs
from smsc.backoff import Backoff

if TYPE_CHECKING:
    from fixtures_services import MosquittoBroker


async def record_alerts(store: Store, n: int, start: int = 0) -> list[str]:
    items = [flagged_sms(i) for i in range(start, start + n)]
    await store.record(items)
    return [a.id for it in items for a in it.alerts]


async def alert_rows(store: Store) -> list[dict[str, object]]:
    async with store.engine.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(sa.select(alerts))]


async def terminate_idle_transactions(observer: Store) -> int:
    """pg_terminate_backend on the sessions idle in a transaction: a node dead mid-claim."""
    async with observer.engine.connect() as conn:
        done = await conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND state = 'idle in transaction' "
                "AND pid <> pg_backend_pid()"
            )
        )
        return len(done.all())


# -- the store's claims (both databases) ---------------------------------------------------


async def test_a_claim_marks_in_its_block_and_what_it_left_stays_pending(store: Store) -> None:
    ids = await record_alerts(store, 5)
    async with store.claim_alerts(3, timeout=5) as claim:
        assert [a.id for a in claim.alerts] == ids[:3]  # oldest first
        await claim.mark_sent(ids[:2], 1.0)
        await claim.mark_failed(ids[2], "refused", permanent=True, now=2.0)
    assert [a.id for a in await store.pending_alerts(10)] == ids[3:]
    counts = await store.counts()
    assert counts["alerts_sent"] == 2 and counts["alerts_failed"] == 1
    with pytest.raises(RuntimeError):  # the caller's error: what was marked stays marked
        async with store.claim_alerts(10) as claim:
            await claim.mark_sent([ids[3]], 3.0)
            raise RuntimeError("publish failed")
    assert [a.id for a in await store.pending_alerts(10)] == ids[4:]


async def test_centre_claim_takes_a_cases_reports_in_order(store: Store) -> None:
    reports = CentreReports(store)
    await enqueue_report(store, "c1", "detection")
    await enqueue_report(store, "c1", "suspended")
    async with reports.claim(5) as batch:  # the suspension waits for its detection
        assert [r.kind for r in batch] == ["detection"]
        await reports.mark_attempt(batch[0].id, 1.0)
        await reports.mark_acked(batch[0].id, "nb-1", 2.0)
    async with reports.claim(5) as batch:
        assert [r.kind for r in batch] == ["suspended"]
    (first, _) = await reports.all()
    assert first["acked_at"] == 2.0 and first["attempts"] == 1


# -- PostgreSQL: two nodes ------------------------------------------------------------------


async def test_concurrent_claims_are_disjoint_and_a_dead_claim_rolls_back(
    pg_nodes: list[Store],
) -> None:
    a, b, observer = pg_nodes
    ids = await record_alerts(a, 30)
    async with a.claim_alerts(10, timeout=5) as first:
        async with b.claim_alerts(10, timeout=5) as second:
            assert [x.id for x in first.alerts] == ids[:10]
            assert [x.id for x in second.alerts] == ids[10:20]  # skipped the locked ones
            await second.mark_sent([x.id for x in second.alerts], 1.0)
        assert await terminate_idle_transactions(observer) == 1  # a dies mid-claim
        with pytest.raises(StoreError):
            await first.mark_sent([x.id for x in first.alerts], 1.0)
    pending = [x.id for x in await b.pending_alerts(100)]
    assert pending == ids[:10] + ids[20:]  # a's batch rolled back: claimed again elsewhere
    async with b.claim_alerts(100, timeout=5) as again:
        assert [x.id for x in again.alerts] == pending


async def test_two_dispatchers_on_one_database_publish_each_alert_once(
    pg_nodes: list[Store], mosquitto: MosquittoBroker
) -> None:
    a, b, _ = pg_nodes
    dispatchers = [
        OutboxDispatcher(
            st, config(mosquitto.port), poll_interval=0.5, backoff=Backoff(initial=0.05, cap=0.4)
        )
        for st in (a, b)
    ]
    async with (
        Subscriber(mosquitto.port, ["fraudgate/alerts/#"]) as sub,
        dispatchers[0] as d1,
        dispatchers[1] as d2,
    ):
        await wait_until(lambda: d1.connected and d2.connected, 10, "both connected")
        ids = await record_alerts(a, 500)
        d1.notify()
        d2.notify()
        await wait_until(lambda: len(sub.alerts()) >= 500, 30, "500 alerts")
        await wait_until(lambda: d1.published + d2.published == 500, 10, "marked sent")
        await asyncio.sleep(0.5)  # anything doubled would have arrived by now
    received = Counter(r.body["id"] for r in sub.alerts())
    assert set(received) == set(ids) and max(received.values()) == 1
    assert d1.published > 0 and d2.published > 0  # both nodes drained the outbox
    rows = await alert_rows(b)
    assert all(r["sent_at"] is not None and r["attempts"] == 1 for r in rows)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertSet:
    return make_certs(tmp_path_factory.mktemp("centre-pki"))


async def enqueue_report(store: Store, case_id: str, kind: str, decided: float = 0.0) -> None:
    case = CaseView(case_id, decided_at=decided or None)
    async with store.engine.begin() as conn:
        await CentreOutbox("kcell").enqueue(conn, case, notice(case, kind, Person()))


async def test_two_centre_dispatchers_deliver_each_report_once(
    pg_nodes: list[Store], certs: CertSet, tmp_path: Path
) -> None:
    """Two nodes overlapping (a takeover): each report reaches the centre once, and a case's
    suspension never before its detection."""
    a, b, _ = pg_nodes
    for i in range(60):
        await enqueue_report(a, f"c{i}", "detection")
        await enqueue_report(a, f"c{i}", "suspended", decided=1_800_000_060.0)
    async with CentreSimulator(certs) as centre:
        link = link_config(certs, centre)
        d1, d2 = (
            CentreDispatcher(st, link, poll_interval=0.2, backoff=Backoff(initial=0.05, cap=0.3))
            for st in (a, b)
        )
        async with d1, d2:
            await centre.wait_for(120, timeout=60)
            await wait_until(lambda: d1.delivered + d2.delivered == 120, 10, "all acked")
            await asyncio.sleep(0.3)
    assert centre.requests == 120 and len(centre.reports) == 120
    assert all(r.deliveries == 1 for r in centre.reports.values())
    assert d1.delivered > 0 and d2.delivered > 0
    order = {
        (r.document["case_id"], r.document["kind"]): n
        for n, r in enumerate(centre.reports.values())
    }
    for i in range(60):
        assert order[(f"c{i}", "detection")] < order[(f"c{i}", "suspended")]
    rows = await CentreReports(b).all()
    assert all(r["acked_at"] is not None and r["attempts"] == 1 for r in rows)
