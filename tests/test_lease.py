"""The leader lease (gateway/store/lease.py) on a real PostgreSQL: one holder among several nodes,
takeover when the holder's session ends (released, terminated by the server, the node SIGKILLed,
its store closed); SQLite holds it at once."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from gateway.store import Store, sqlite_url
from gateway.store.lease import LeaderLease, LeaseError, lease_key

ROOT = Path(__file__).resolve().parents[1]
CHECK = 0.2  # check_every in these tests
MARGIN = 3.0  # a connect and the event loop's scheduling, generously


def lease(store: Store, node: str, changes: list[bool] | None = None, **kw: float) -> LeaderLease:
    return LeaderLease(
        store,
        "workflow",
        node=node,
        check_every=kw.pop("check_every", CHECK),
        on_change=changes.append if changes is not None else None,
        **kw,
    )


async def held_within(lease: LeaderLease, seconds: float) -> float:
    """Seconds until `lease` is held (fails after `seconds`)."""
    started = time.monotonic()
    async with asyncio.timeout(seconds):
        await lease.wait_held()
    return time.monotonic() - started


async def lost_within(lease: LeaderLease, seconds: float) -> None:
    async with asyncio.timeout(seconds):
        await lease.wait_lost()


async def stays_free(lease: LeaderLease, seconds: float) -> None:
    """`lease` is not taken during `seconds` (several of its tries)."""
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(seconds):
            await lease.wait_held()
    assert not lease.held


async def terminate_sessions(observer: Store, node: str) -> int:
    async with observer.engine.connect() as conn:
        done = await conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = :app"
            ),
            {"app": f"fraudgate-lease {node}"},
        )
        return len(done.all())


# -- SQLite ------------------------------------------------------------------------------------


async def test_sqlite_lease_is_held_at_once(tmp_path: Path) -> None:
    changes: list[bool] = []
    async with await Store.open(sqlite_url(tmp_path / "data")) as st:
        one = lease(st, "solo", changes)
        assert not one.held
        async with one:
            assert one.held and one.holder_since is not None and changes == [True]
            await held_within(one, 0.1)
            assert await one.current_holder() == "solo"
        assert not one.held and changes == [True, False] and one.lost == 0


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(LeaseError):
        LeaderLease(object(), "", node="n")  # type: ignore[arg-type]
    with pytest.raises(LeaseError):
        LeaderLease(object(), "x", node="n", check_every=0)  # type: ignore[arg-type]
    # the same on every node and after a restart (a hash of the name, not Python's hash())
    assert lease_key("workflow") == -629181537 != lease_key("centre")
    assert -(2**31) <= lease_key("workflow") < 2**31


async def test_waiting_on_a_lease_not_entered_is_an_error(tmp_path: Path) -> None:
    async with await Store.open(sqlite_url(tmp_path / "data")) as st:
        with pytest.raises(LeaseError, match="not running"):
            await lease(st, "n").wait_held()


# -- PostgreSQL --------------------------------------------------------------------------------


async def test_one_holder_and_takeover_when_it_lets_go(pg_nodes: list[Store]) -> None:
    a_changes: list[bool] = []
    b_changes: list[bool] = []
    a, b = lease(pg_nodes[0], "node-a", a_changes), lease(pg_nodes[1], "node-b", b_changes)
    async with a:
        await held_within(a, MARGIN)
        async with b:
            await stays_free(b, 5 * CHECK)
            assert a.held and await b.current_holder() == "node-a"
            await a.close()  # the holder stops (a clean shutdown)
            assert not a.held and a_changes == [True, False] and a.lost == 0
            waited = await held_within(b, CHECK + MARGIN)
            assert waited < CHECK + MARGIN
            assert await a.current_holder() == "node-b" and b_changes == [True]
            assert b.holder_since is not None and b.acquired == 1
        assert await a.current_holder() is None  # b released on leaving
        assert b_changes == [True, False]


async def test_a_terminated_session_is_a_dead_holder(pg_nodes: list[Store]) -> None:
    """What a dead node looks like to the server: its session ends. The other node takes the
    lease at its next try; the old holder finds out at its next check and does not take it
    back while the new one lives."""
    a_changes: list[bool] = []
    a, b = lease(pg_nodes[0], "node-a", a_changes), lease(pg_nodes[1], "node-b")
    async with a:
        await held_within(a, MARGIN)  # a first: b enters once a holds it
        async with b:
            await stays_free(b, 3 * CHECK)
            assert await terminate_sessions(pg_nodes[2], "node-a") == 1
            started = time.monotonic()
            await lost_within(a, CHECK + MARGIN)
            await held_within(b, CHECK + MARGIN)
            assert time.monotonic() - started < 10  # the bound for a takeover
            assert a_changes == [True, False] and a.lost == 1 and a.last_error
            await stays_free(a, 5 * CHECK)  # a reconnected and tries: b holds it
            assert await b.current_holder() == "node-b"
            # and when b's session dies too, a takes it back
            assert await terminate_sessions(pg_nodes[2], "node-b") == 1
            await held_within(a, CHECK + MARGIN)
            await lost_within(b, CHECK + MARGIN)
            assert a_changes == [True, False, True]


async def test_closing_the_holders_store_hands_the_lease_over(pg_nodes: list[Store]) -> None:
    a, b = lease(pg_nodes[0], "node-a"), lease(pg_nodes[1], "node-b")
    async with a:
        await held_within(a, MARGIN)
        async with b:
            await stays_free(b, 3 * CHECK)
            await pg_nodes[0].close()
            await lost_within(a, CHECK + MARGIN)
            await held_within(b, CHECK + MARGIN)
            assert "closed" in (a.last_error or "")
            await stays_free(a, 3 * CHECK)


async def test_leases_of_other_names_and_the_migration_lock_are_apart(
    pg_nodes: list[Store],
) -> None:
    workflow = lease(pg_nodes[0], "node-a")
    centre = LeaderLease(pg_nodes[1], "centre", node="node-b", check_every=CHECK)
    async with workflow, centre:
        await held_within(workflow, MARGIN)
        await held_within(centre, MARGIN)
        async with asyncio.timeout(10):
            await pg_nodes[2].migrate()  # its advisory lock is not the leases' key space
        assert await pg_nodes[2].schema_revision() is not None


async def test_a_sigkilled_node_is_taken_over_within_10_s(
    pg_nodes: list[Store], postgres_url: str
) -> None:
    """A real process holding the lease, SIGKILLed: its socket closes, the server ends the
    session and frees the lock."""
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from gateway.store import Store
        from gateway.store.lease import LeaderLease

        async def main():
            store = await Store.open({postgres_url!r})
            async with LeaderLease(store, "workflow", node="doomed", check_every={CHECK}) as l:
                await asyncio.wait_for(l.wait_held(), 20)
                print("held", flush=True)
                await asyncio.sleep(3600)

        asyncio.run(main())
        """
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(30):
            assert (await proc.stdout.readline()).strip() == b"held"
        survivor = lease(pg_nodes[1], "node-b")
        async with survivor:
            await stays_free(survivor, 3 * CHECK)
            assert await survivor.current_holder() == "doomed"
            proc.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            await held_within(survivor, 10)
            assert time.monotonic() - killed < 10
            assert await survivor.current_holder() == "node-b"
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
