"""The proxy's journal on SQLite and PostgreSQL (gateway/proxy/journal.py): submits written
once whatever the resubmissions, state changes in order and only from the states they name,
each node resuming its own rows, retention."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gateway.proxy.journal import (
    Accept,
    Delivered,
    InboundRow,
    Journal,
    Keep,
    SetState,
    SubmitRow,
    SubmitState,
)
from gateway.store import Store

DAY = 86400.0


@pytest.fixture
async def journal(store: Store) -> AsyncIterator[Journal]:
    j = Journal(store, node="n1")
    task = asyncio.create_task(j.run())
    yield j
    task.cancel()


def row(i: int, *, created: float = 1_800_000_000.0, state: SubmitState = SubmitState.PENDING,
        group: str | None = None) -> SubmitRow:  # fmt: skip
    return SubmitRow(id=f"{i:032x}", account="aggr", state=state, pdu=b"\x00" * 17, part=1,
                     group_key=group, receipt=1, created_at=created)  # fmt: skip


async def test_a_submit_is_written_once_and_its_resubmission_finds_it(journal: Journal) -> None:
    first = await journal.submit(Accept(row(1)))
    again = await journal.submit(Accept(row(1)))
    under_prior = await journal.submit(Accept(row(2), prior_id=row(1).id))  # the next window
    assert first is None and again is not None and again.id == row(1).id
    assert under_prior is not None and under_prior.id == row(1).id
    assert (await journal.counts())["pending"] == 1


async def test_state_changes_apply_in_order_and_only_from_their_states(journal: Journal) -> None:
    for i in range(1, 5):
        await journal.submit(Accept(row(i)))
    ids = [row(i).id for i in range(1, 5)]
    futs = [
        journal.submit(SetState(ids, SubmitState.SENDING, upstream="smsc", attempt=True)),
        *(
            journal.submit(
                SetState(
                    [i], SubmitState.FORWARDED, smsc_id=f"s{n}", only_from=(SubmitState.SENDING,)
                )
            )
            for n, i in enumerate(ids[:3])
        ),
        journal.submit(
            SetState([ids[0]], SubmitState.RECEIPTED, only_from=(SubmitState.FORWARDED,))
        ),
        # not from 'receipted': a late 'forwarded' does not move it back
        journal.submit(SetState([ids[0]], SubmitState.FORWARDED, only_from=(SubmitState.SENDING,))),
    ]
    await asyncio.gather(*futs)
    got = {r.id: r for r in await journal.find(ids)}
    assert [got[i].state for i in ids] == [SubmitState.RECEIPTED, SubmitState.FORWARDED,
                                          SubmitState.FORWARDED, SubmitState.SENDING]  # fmt: skip
    assert [got[i].smsc_id for i in ids] == ["s0", "s1", "s2", None]
    assert all(got[i].attempts == 1 and got[i].upstream == "smsc" for i in ids)


async def test_the_last_part_releases_its_held_parts_in_its_transaction(journal: Journal) -> None:
    await journal.submit(Accept(row(1, state=SubmitState.HELD, group="g1")))
    await journal.submit(Accept(row(2, state=SubmitState.HELD, group="g2")))
    await journal.submit(Accept(row(3, group="g1"), release="g1"))
    got = {r.id: r.state for r in await journal.find([row(i).id for i in (1, 2, 3)])}
    assert got == {row(1).id: SubmitState.PENDING, row(2).id: SubmitState.HELD,
                   row(3).id: SubmitState.PENDING}  # fmt: skip


async def test_each_node_resumes_its_own_rows(store: Store) -> None:
    mine, theirs = Journal(store, node="n1"), Journal(store, node="n2")
    tasks = [asyncio.create_task(j.run()) for j in (mine, theirs)]
    try:
        await mine.submit(Accept(row(1)))
        await theirs.submit(Accept(row(2, state=SubmitState.SENDING)))
        assert [r.id for r in await mine.unfinished()] == [row(1).id]
        assert [r.id for r in await theirs.unfinished()] == [row(2).id]
    finally:
        for t in tasks:
            t.cancel()


async def test_rows_past_the_retention_are_deleted(journal: Journal) -> None:
    now = 1_800_000_000.0
    await journal.submit(Accept(row(1, created=now - 40 * DAY)))
    await journal.submit(Accept(row(2, created=now - 1 * DAY)))
    await journal.submit(Keep(InboundRow("k-old", "aggr", "mo", b"x", 0, now - 31 * DAY)))
    await journal.submit(Keep(InboundRow("k-new", "aggr", "mo", b"x", 0, now - 1 * DAY)))
    await journal.submit(Delivered(["k-new"]))
    assert await journal.purge(now - 30 * DAY, chunk=1) == 2
    assert [r.id for r in await journal.find([row(1).id, row(2).id])] == [row(2).id]
    assert (await journal.counts())["inbound_waiting"] == 0  # k-old gone, k-new delivered


async def test_a_late_forwarded_keeps_receipted_and_adds_the_smsc_id(journal: Journal) -> None:
    await journal.submit(Accept(row(1, state=SubmitState.SENDING)))
    await journal.submit(Accept(row(2, state=SubmitState.SENDING)))
    await journal.submit(SetState([row(1).id], SubmitState.RECEIPTED))  # its receipt came first
    forwarded = (SubmitState.PENDING, SubmitState.SENDING, SubmitState.RECEIPTED)
    await asyncio.gather(*(
        journal.submit(SetState([row(i).id], SubmitState.FORWARDED, smsc_id=f"s{i}",
                                only_from=forwarded, keep=(SubmitState.RECEIPTED,)))
        for i in (1, 2)
    ))  # fmt: skip
    got = {r.id: (r.state, r.smsc_id) for r in await journal.find([row(1).id, row(2).id])}
    assert got == {row(1).id: (SubmitState.RECEIPTED, "s1"),
                   row(2).id: (SubmitState.FORWARDED, "s2")}  # fmt: skip
