"""The call records' sink on a real SQLite store: findings are written once per (kind, subject)
with their alert, a finding made while the database refused to write is written with the next
batch (the analyzer never makes it twice), and a file whose batch failed is taken again by the
inbox without its records counting twice."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import sqlalchemy as sa

from gateway.calls.analyzer import CallFinding
from gateway.calls.cdr import Cdr, RecordType
from gateway.calls.inbox import Inbox
from gateway.calls.ledger import Ledger
from gateway.calls.repository import CallFindings
from gateway.calls.service import CallService
from gateway.calls.settings import CallsSettings
from gateway.domain import Alert
from gateway.store import Store, StoreError
from gateway.store.models import alerts
from gateway.store.models_calls import call_findings
from simulators.cdr import write_records

T0 = 1_780_000_000.0


def simbox(msisdn: str, n: int = 40, start: float = T0) -> list[Cdr]:
    return [
        Cdr(RecordType.MOC, start + 103 * i, 95.0, "401021111111111", "86123400000001", msisdn,
            msisdn, f"7705{i:07d}", lac=11, cell=4242, record_id=f"m1:{msisdn}:{i}")
        for i in range(n)
    ]  # fmt: skip


class FailingOnce:
    """The real repository, refusing its first `failures` writes as a database would."""

    def __init__(self, inner: CallFindings, failures: int = 1) -> None:
        self.inner = inner
        self.failures = failures

    async def record(
        self, findings: Sequence[CallFinding], alert_of: Callable[[CallFinding], Alert], now: float
    ) -> list[CallFinding]:
        if self.failures:
            self.failures -= 1
            await asyncio.sleep(0.01)  # the database takes a moment to refuse
            raise StoreError("calls.record", "database is locked")
        return await self.inner.record(findings, alert_of, now)


async def rows(store: Store) -> tuple[list[tuple[str, str]], list[dict[str, object]]]:
    async with store.engine.connect() as conn:
        found = [(r.kind, r.subject) for r in await conn.execute(sa.select(call_findings))]
        published = [
            r.payload for r in await conn.execute(sa.select(alerts).where(alerts.c.kind == "call"))
        ]
    return found, published


async def test_a_finding_made_while_the_store_failed_is_written_with_the_next_batch(
    tmp_path: Path,
) -> None:
    async with await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'fg.db'}") as store:
        await store.migrate()
        service = CallService(CallsSettings(), FailingOnce(CallFindings(store)))
        first = simbox("77011234567")
        try:
            await service.accept(first, "f1")
        except StoreError:
            pass
        else:  # pragma: no cover - the double must fail
            raise AssertionError("the first write should have failed")
        assert service.unwritten == 1
        assert (await rows(store))[0] == []
        # the next batch (here: another SIM's) writes both
        await service.accept(simbox("77019999999", start=T0 + 10), "f2")
        found, published = await rows(store)
        assert sorted(found) == [("simbox", "77011234567"), ("simbox", "77019999999")]
        assert len(published) == 2 and service.unwritten == 0
        # the same records again: duplicates, nothing new
        assert await service.accept(first, "f1 again") == 0
        assert len((await rows(store))[1]) == 2
        service.close()


async def test_an_inbox_file_whose_batch_failed_is_read_again_and_counted_once(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "inbox"
    folder.mkdir()
    write_records(simbox("77011234567") + simbox("77019999999", start=T0 + 9000),
                  folder / "msc1.csv")  # fmt: skip
    async with await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'fg.db'}") as store:
        await store.migrate()
        service = CallService(CallsSettings(), FailingOnce(CallFindings(store)))
        inbox = Inbox(folder, service, Ledger(store), batch_size=50, interval=0.01)
        await inbox.scan()  # sees the file
        await inbox.scan()  # takes it: the first batch's findings fail to be written
        await inbox.scan()  # and again: from the checkpoint
        found, published = await rows(store)
        assert sorted(found) == [("simbox", "77011234567"), ("simbox", "77019999999")]
        assert len(published) == 2
        assert all(json.dumps(p) for p in published)
        assert service.records == 80  # each record analysed once
        service.close()


async def test_findings_of_two_sources_failing_at_once_are_both_written_later(
    tmp_path: Path,
) -> None:
    """The inbox and a stream connection hand batches at the same time while the database
    refuses: neither source's finding may be lost when the next write succeeds."""
    async with await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'fg.db'}") as store:
        await store.migrate()
        service = CallService(CallsSettings(), FailingOnce(CallFindings(store), failures=2))
        results = await asyncio.gather(
            service.accept(simbox("77011111111"), "inbox"),
            service.accept(simbox("77012222222", start=T0 + 5), "stream"),
            return_exceptions=True,
        )
        assert all(isinstance(r, StoreError) for r in results)
        await service.accept(simbox("77013333333", start=T0 + 9), "inbox")
        found, _ = await rows(store)
        assert sorted(s for _, s in found) == ["77011111111", "77012222222", "77013333333"]
        service.close()
