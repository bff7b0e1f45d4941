"""The forwarder's sender when its bind's link has closed and its supervisor has not noticed
yet (review finding): every await in its loop returned at once, so it spun without yielding
and the whole daemon froze. Run in a thread with its own event loop, so that a spinning sender
fails this test (the join times out) instead of hanging the suite."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from gateway.proxy.journal import Journal, SubmitRow, SubmitState
from gateway.proxy.upstream import Forwarder
from gateway.store import Store
from smsc.link import Link
from smsc.session import Role
from tests.helpers.proxy_lab import proxy_settings


class _Nobody:
    def on_bind(self, *args: object) -> None: ...
    def on_request(self, *args: object) -> None: ...
    def on_closed(self, *args: object) -> None: ...


async def _scenario(db: Path, ticks: list[float]) -> None:
    store = await Store.open(f"sqlite+aiosqlite:///{db}")
    try:
        await store.migrate()
        forwarder = Forwarder(proxy_settings(1), Journal(store), _noop_deliver)
        sup = forwarder.supervisors[0]
        link = Link(Role.ESME, _Nobody())  # never connected: closed at once
        link.session.connection_lost("cut")
        sup.link = link
        sup._bound.set()  # the supervisor has not seen the close yet
        forwarder.enqueue([SubmitRow("r1", "aggr", SubmitState.PENDING, b"\x00" * 16)])
        sender = asyncio.ensure_future(forwarder._sender(sup))

        async def heartbeat() -> None:
            loop = asyncio.get_running_loop()
            for _ in range(10):
                ticks.append(loop.time())
                await asyncio.sleep(0.02)

        await heartbeat()
        sender.cancel()
    finally:
        await store.close()


async def _noop_deliver(*args: object) -> bool:
    return True


def test_a_sender_whose_link_closed_unnoticed_yields_to_the_rest(tmp_path: Path) -> None:
    ticks: list[float] = []
    thread = threading.Thread(
        target=lambda: asyncio.run(_scenario(tmp_path / "j.db", ticks)), daemon=True
    )
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "the sender spun: nothing else ran on its event loop"
    assert len(ticks) == 10
