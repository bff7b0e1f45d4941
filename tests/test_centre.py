"""The centre link over real TLS on loopback, with real SQLite and PostgreSQL (R2, R3, R5)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import sqlalchemy as sa

from gateway.cases import Notice
from gateway.centre import (
    CentreConfig,
    CentreDispatcher,
    CentreEndpoint,
    CentreOutbox,
    CentreReports,
    EndpointConfig,
    InboundReport,
    StoreJournal,
    inbound_errors,
    report_errors,
)
from gateway.centre.schema import INBOUND_SCHEMA, REPORT_SCHEMA, dump
from gateway.store import Store, sqlite_url
from gateway.store.models_centre import centre_inbound
from simulators.centre import CentreSimulator, CertSet, inbound_report, make_certs
from simulators.faultproxy import FaultProxy
from smsc.backoff import Backoff

if TYPE_CHECKING:
    from fixtures_services import TlsMaterial

ROOT = Path(__file__).resolve().parents[1]
T0 = 1_800_000_000.0
IIN = "900101300015"
SURNAME, NAME, PATRONYMIC = "Сейтқалиева", "Айгерім", "Бекқызы"
PERSONAL = (IIN, SURNAME, NAME, PATRONYMIC)


# -- fakes of the cases and registry modules ---------------------------------------------------


@dataclass(frozen=True)
class Person:
    patronymic: str | None = PATRONYMIC
    id: str = "p-1"
    iin: str = IIN
    surname: str = SURNAME
    name: str = NAME


@dataclass(frozen=True)
class NumberRecord:
    msisdn: str
    imsi: str = "401011234567890"
    status: str = "active"
    contract_date: str = "2024-03-01"
    person_id: str = "p-1"


@dataclass(frozen=True)
class CaseView:
    id: str
    source: str = "detector"
    numbers: list[str] = field(default_factory=lambda: ["+77011234567"])
    state: str = "open"
    received_at: float = T0
    decided_at: float | None = None
    evidence: list[dict[str, Any]] = field(default_factory=list)
    external_id: str | None = None
    sender: str | None = None
    decision_reason: str = ""

    @property
    def facts_time(self) -> float:
        return self.received_at


EVIDENCE = [
    {"detector": "content", "rule_id": "content.ru.card_blocked", "description": "card pretext"},
    {"kind": "probe", "description": "CLI arrived as a local number", "at": T0 - 60},
]
NUMBERS = [NumberRecord("77011234567"), NumberRecord("+7 705 765 43 21")]


def notice(case: CaseView, kind: str, person: Person | None, numbers: Any = NUMBERS) -> Notice:
    """What the cases module hands the outbox for `kind` of `case` (round 1, at its decision)."""
    return Notice(kind, 1, case.decided_at or T0, person, numbers)


class FakeOpener:
    """The cases module's port: one case per centre report id."""

    def __init__(self) -> None:
        self.calls: list[InboundReport] = []
        self.cases: dict[str, str] = {}

    async def open_from_centre(self, report: InboundReport) -> str:
        self.calls.append(report)
        return self.cases.setdefault(report.report_id, f"case-{len(self.cases) + 1}")


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertSet:
    return make_certs(tmp_path_factory.mktemp("centre-pki"))


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    async with await Store.open(sqlite_url(tmp_path / "data")) as st:
        await st.migrate()
        yield st


@pytest.fixture
async def centre(certs: CertSet) -> AsyncIterator[CentreSimulator]:
    async with CentreSimulator(certs) as sim:
        yield sim


@pytest.fixture
def no_personal_data_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.DEBUG)
    yield
    ours = ("gateway", "simulators", "uvicorn", "httpx", "httpcore", "fastapi")
    for record in caplog.records:
        if record.name.split(".")[0] not in ours:
            continue  # aiosqlite's DEBUG lines carry SQL parameters: never run it at DEBUG
        text = record.getMessage() + (record.exc_text or "")
        for secret in PERSONAL:
            assert secret not in text, f"personal data logged by {record.name}: {text}"


def link_config(
    certs: CertSet, centre: CentreSimulator, *, client: tuple[Path, Path] | None = None
) -> CentreConfig:
    cert, key = client or certs.cert("operator", "client")
    return CentreConfig(
        url=centre.url,
        operator="kcell",
        client_cert=cert,
        client_key=key,
        ca_file=certs.centre_ca,
        timeout=3.0,
    )


def dispatcher(store: Store, config: CentreConfig) -> CentreDispatcher:
    return CentreDispatcher(
        store, config, poll_interval=0.2, backoff=Backoff(initial=0.05, cap=0.3)
    )


async def enqueue(
    store: Store, case: CaseView, kind: str = "detection", *, person: Person | None = None
) -> None:
    async with store.engine.begin() as conn:
        await CentreOutbox("kcell").enqueue(conn, case, notice(case, kind, person or Person()))


async def eventually(check: Any, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while True:
            if await check():
                return
            await asyncio.sleep(0.05)


# -- schemas and the outbox --------------------------------------------------------------------


def test_docs_hold_the_schemas() -> None:
    assert (ROOT / "docs" / "centre-report.schema.json").read_text() == dump(REPORT_SCHEMA)
    assert (ROOT / "docs" / "centre-inbound.schema.json").read_text() == dump(INBOUND_SCHEMA)


async def test_every_report_built_matches_the_schema(store: Store) -> None:
    cases = [
        ("detection", CaseView("c1", evidence=EVIDENCE), Person()),
        ("detection", CaseView("c2", external_id="nbk-77", source="centre"), Person(None)),
        ("suspended", CaseView("c1", decided_at=T0 + 3600), Person()),
        ("not_confirmed", CaseView("c3", decided_at=T0 + 7200, source="centre"), None),
    ]
    async with store.engine.begin() as conn:
        for kind, case, person in cases:
            await CentreOutbox("kcell").enqueue(conn, case, notice(case, kind, person))
    rows = await CentreReports(store).all()
    assert len(rows) == 4
    for row in rows:
        doc = {**row["payload"], "sent_at": "2027-01-15T08:00:00.000Z"}
        assert report_errors(doc) == [], row["kind"]
        assert doc["report_id"] == row["id"] and doc["kind"] == row["kind"]
    detection = rows[0]["payload"]
    # R3: names, IIN and every number registered to the subscriber
    assert detection["subscriber"] == {
        "surname": SURNAME,
        "name": NAME,
        "patronymic": PATRONYMIC,
        "iin": IIN,
        "numbers": ["+77011234567", "+77057654321"],
    }
    assert detection["evidence"][1] == {
        "type": "probe",
        "summary": "CLI arrived as a local number",
        "at": "2027-01-15T07:59:00.000Z",
    }
    assert rows[1]["payload"]["subscriber"]["patronymic"] is None
    assert rows[1]["payload"]["centre_ref"] == "nbk-77"  # the centre's own id, for its case
    assert rows[2]["payload"]["suspended_at"] == "2027-01-15T09:00:00.000Z"
    assert "subscriber" not in rows[3]["payload"]  # R7: no personal data where not required


async def test_report_content_is_what_the_order_asks(store: Store) -> None:
    """Item 9: only numbers registered now are listed; an unknown subscriber is flagged, not
    silently null; centre_ref is the centre's id, never an internal key."""
    ended = [*NUMBERS, NumberRecord("+77071112233", status="terminated")]
    own = CaseView("c1", source="detection_sms", external_id="number:+77011234567")
    foreign = CaseView("c2", source="complaint", numbers=[], sender="KASPI.KZ")
    async with store.engine.begin() as conn:
        await CentreOutbox("kcell").enqueue(conn, own, notice(own, "detection", Person(), ended))
        await CentreOutbox("kcell").enqueue(conn, foreign, notice(foreign, "detection", None, []))
    first, second = (r["payload"] for r in await CentreReports(store).all())
    assert first["subscriber"]["numbers"] == ["+77011234567", "+77057654321"]
    assert first["centre_ref"] is None and first["subscriber_status"] == "registered"
    assert first["round"] == 1 and first["status"] == "confirmed"
    assert second["subscriber"] is None and second["subscriber_status"] == "unknown_to_registry"
    assert second["numbers"] == [] and second["sender"] == "KASPI.KZ"
    # nobody to complete behind an alphanumeric sender: not an item that needs a person
    rows = await CentreReports(store).all()
    assert [r["subscriber_unknown"] for r in rows] == [False, False]
    for doc in (first, second):
        assert report_errors({**doc, "sent_at": "2027-01-15T08:00:00Z"}) == []


def test_schema_refuses_a_detection_without_iin() -> None:
    doc = {
        "schema_version": 2,
        "report_id": "r1",
        "kind": "detection",
        "operator": "kcell",
        "sent_at": "2027-01-15T08:00:00Z",
        "created_at": "2027-01-15T08:00:00Z",
        "case_id": "c1",
        "source": "detector",
        "numbers": ["+77011234567"],
        "subscriber": {"surname": "X", "name": "Y", "patronymic": None, "numbers": ["+7701"]},
        "evidence": [],
        "detected_at": "2027-01-15T08:00:00Z",
    }
    problems = report_errors(doc)
    assert any("'iin' is a required property" in p for p in problems)
    assert any(p.startswith("/subscriber/numbers/0") for p in problems)
    assert not any("+7701" in p for p in problems)  # paths and rules, never the values


async def test_enqueue_rolled_back_leaves_no_report(store: Store) -> None:
    with contextlib.suppress(RuntimeError):
        async with store.engine.begin() as conn:
            case = CaseView("c1")
            await CentreOutbox("kcell").enqueue(conn, case, notice(case, "detection", Person(), []))
            raise RuntimeError("the case change failed")
    assert await CentreReports(store).all() == []


async def test_one_report_per_event(store: Store) -> None:
    await enqueue(store, CaseView("c1"))
    await enqueue(store, CaseView("c1"))  # the cases module retried its transaction
    await enqueue(store, CaseView("c1", decided_at=T0 + 60), "suspended")
    rows = await CentreReports(store).all()
    assert [(r["case_id"], r["kind"]) for r in rows] == [("c1", "detection"), ("c1", "suspended")]
    with pytest.raises(ValueError, match="kind"):
        await enqueue(store, CaseView("c1"), "confirmed")


# -- delivery -------------------------------------------------------------------------------------


async def test_dispatcher_delivers_over_mutual_tls(
    store: Store, certs: CertSet, centre: CentreSimulator, no_personal_data_logged: None
) -> None:
    await enqueue(store, CaseView("c1", evidence=EVIDENCE))
    await enqueue(store, CaseView("c1", decided_at=T0 + 60), "suspended")
    async with dispatcher(store, link_config(certs, centre)) as d:
        d.notify()
        await centre.wait_for(2)
        await eventually(lambda: _all_acked(store, 2))
    rows = await CentreReports(store).all()
    received = [centre.reports[r["id"]] for r in rows]
    assert [r.document["kind"] for r in received] == ["detection", "suspended"]  # in order
    assert received[0].document["subscriber"]["iin"] == IIN
    for row, got in zip(rows, received, strict=True):
        assert row["ack_id"] == got.ack_id and row["attempts"] == 1 and got.deliveries == 1
        assert row["sent_at"] is not None and row["last_error"] is None


async def test_centre_down_for_a_while(
    store: Store, certs: CertSet, centre: CentreSimulator, no_personal_data_logged: None
) -> None:
    await centre.down()
    for i in range(3):
        await enqueue(store, CaseView(f"c{i}"))
    async with dispatcher(store, link_config(certs, centre)) as d:
        await eventually(lambda: _attempted(store, 2))  # tried, refused, backing off
        assert d.centre_down and not centre.reports
        await centre.up()
        await centre.wait_for(3)
        await eventually(lambda: _all_acked(store, 3))
    assert all(r.deliveries == 1 for r in centre.reports.values())
    assert not d.centre_down


async def test_a_centre_that_stops_answering_mid_connection_gets_each_report_once(
    store: Store, certs: CertSet, centre: CentreSimulator
) -> None:
    """Half-open (simulators/faultproxy.py between the dispatcher and the centre): the TLS
    connection stays up and nothing comes back. The request times out, the report stays
    pending, and once the network is back it is delivered, acknowledged once; the held first
    attempt that reaches the centre late is the same report (its Idempotency-Key)."""
    from urllib.parse import urlsplit

    async with FaultProxy("127.0.0.1", urlsplit(centre.url).port or 443) as proxy:
        config = dataclasses.replace(
            link_config(certs, centre), url=f"https://127.0.0.1:{proxy.port}", timeout=0.5
        )
        await enqueue(store, CaseView("c1"))
        async with dispatcher(store, config) as d:
            await centre.wait_for(1)  # the link works
            proxy.freeze()
            await enqueue(store, CaseView("c2"))
            d.notify()
            await eventually(lambda: _attempted_all(store, 2), timeout=10)
            assert d.centre_down and len(centre.reports) == 1
            proxy.thaw()
            await centre.wait_for(2)
            await eventually(lambda: _all_acked(store, 2))
        assert not d.centre_down
    assert len(centre.reports) == 2
    (late,) = [r for r in centre.reports.values() if r.document["case_id"] == "c2"]
    assert late.deliveries >= 1  # delivered (again, if the held attempt got through too)
    assert proxy.stats.accepted >= 2  # the dispatcher reconnected


async def _attempted_all(store: Store, attempts: int) -> bool:
    """The newest report was tried at least `attempts` times (and not acknowledged)."""
    rows = await CentreReports(store).all()
    return any(r["attempts"] >= attempts and r["acked_at"] is None for r in rows)


async def test_5xx_then_success_one_report(
    store: Store, certs: CertSet, centre: CentreSimulator
) -> None:
    centre.fail_next(2, status=503)
    await enqueue(store, CaseView("c1"))
    async with dispatcher(store, link_config(certs, centre)):
        await centre.wait_for(1)
        await eventually(lambda: _all_acked(store, 1))
    (row,) = await CentreReports(store).all()
    assert row["attempts"] == 3 and centre.requests == 3
    assert centre.faults.failed == [row["id"], row["id"]]  # the same Idempotency-Key each time
    assert len(centre.reports) == 1


async def test_killed_between_post_and_ack(
    sqlite_store: Store, certs: CertSet, centre: CentreSimulator
) -> None:
    store = sqlite_store
    await enqueue(store, CaseView("c1"))
    centre.ack_delay = 30  # the centre stores it, the acknowledgement is slow
    first = dispatcher(store, link_config(certs, centre))
    task = asyncio.create_task(first.run())
    await centre.wait_for(1)
    task.cancel()  # the process dies: the ack is never recorded
    with contextlib.suppress(asyncio.CancelledError):
        await task
    (row,) = await CentreReports(store).all()
    assert row["acked_at"] is None and row["attempts"] == 1
    centre.ack_delay = 0
    async with dispatcher(store, link_config(certs, centre)):
        await eventually(lambda: _all_acked(store, 1))
    (row,) = await CentreReports(store).all()
    (received,) = centre.reports.values()
    assert received.deliveries == 2 and row["attempts"] == 2
    assert row["ack_id"] == received.ack_id  # the first acknowledgement, once


async def test_refused_report_is_set_aside(
    sqlite_store: Store, certs: CertSet, centre: CentreSimulator
) -> None:
    store = sqlite_store
    centre.fail_next(1, status=422)
    await enqueue(store, CaseView("c1"))
    await enqueue(store, CaseView("c2"))
    async with dispatcher(store, link_config(certs, centre)) as d:
        await centre.wait_for(1)
        await eventually(lambda: _all_done(store))
    first, second = await CentreReports(store).all()
    assert first["failed_at"] is not None and "422" in first["last_error"]
    assert first["attempts"] == 1 and d.rejected == 1
    assert second["acked_at"] is not None and list(centre.reports) == [second["id"]]


async def test_409_counts_as_acknowledged(
    sqlite_store: Store, certs: CertSet, centre: CentreSimulator
) -> None:
    centre.fail_next(1, status=409)
    await enqueue(sqlite_store, CaseView("c1"))
    async with dispatcher(sqlite_store, link_config(certs, centre)):
        await eventually(lambda: _all_acked(sqlite_store, 1))
    (row,) = await CentreReports(sqlite_store).all()
    assert row["attempts"] == 1 and not centre.reports


async def test_client_certificate_of_another_ca_is_refused(
    sqlite_store: Store,
    certs: CertSet,
    centre: CentreSimulator,
    tls_material: TlsMaterial,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.centre")
    await enqueue(sqlite_store, CaseView("c1"))
    foreign = (tls_material.client_cert, tls_material.client_key)
    config = link_config(certs, centre, client=foreign)
    async with dispatcher(sqlite_store, config) as d:
        await eventually(lambda: _attempted(sqlite_store, 2))
    assert d.centre_down and d.last_error is not None and "CentreTlsError" in d.last_error
    tls_lines = [r for r in caplog.records if "TLS" in r.getMessage()]
    assert len([r for r in tls_lines if r.levelno == logging.ERROR]) == 1  # once, not per retry
    (row,) = await CentreReports(sqlite_store).all()
    assert row["acked_at"] is None and row["failed_at"] is None  # kept, retried later
    assert not centre.reports and centre.requests == 0


# -- inbound ---------------------------------------------------------------------------------------


@pytest.fixture
def endpoint_config(certs: CertSet) -> EndpointConfig:
    cert, key = certs.cert("operator", "server")
    return EndpointConfig(cert=cert, key=key, client_ca=certs.centre_ca)


async def test_inbound_report_opens_one_case(
    store: Store, centre: CentreSimulator, endpoint_config: EndpointConfig
) -> None:
    opener = FakeOpener()
    report = inbound_report(["+77011234567", "+77057654321"], category="simbox")
    async with CentreEndpoint(endpoint_config, opener, journal=StoreJournal(store)) as ep:
        first, again = await centre.send_inbound(ep.url, report, repeat=2)
    assert first.status_code == 202 and first.json() == {"case_id": "case-1"}
    assert again.status_code == 200 and again.json() == {"case_id": "case-1"}
    (call,) = opener.calls
    assert call.report_id == report["report_id"] and call.category == "simbox"
    assert call.numbers == ("+77011234567", "+77057654321")
    async with store.engine.connect() as conn:
        rows = (await conn.execute(sa.select(centre_inbound))).all()
    assert [(r.report_id, r.case_id) for r in rows] == [(report["report_id"], "case-1")]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{not json", "bad_json"),
        (json.dumps({"report_id": "x"}).encode(), "schema"),
        (json.dumps({**inbound_report(["77011234567"])}).encode(), "schema"),
        (json.dumps({**inbound_report(["+77011234567"]), "extra": 1}).encode(), "schema"),
        (json.dumps({**inbound_report(["+77011234567"]), "schema_version": 2}).encode(), "schema"),
    ],
)
async def test_bad_inbound_report_is_400(
    sqlite_store: Store,
    centre: CentreSimulator,
    endpoint_config: EndpointConfig,
    body: bytes,
    error: str,
) -> None:
    opener = FakeOpener()
    async with (
        CentreEndpoint(endpoint_config, opener, journal=StoreJournal(sqlite_store)) as ep,
        httpx.AsyncClient(verify=centre.client_context()) as client,
    ):
        response = await client.post(ep.url + "/v1/reports", content=body)
    assert response.status_code == 400 and response.json()["error"] == error
    assert response.json()["paths"]
    assert opener.calls == []
    async with sqlite_store.engine.connect() as conn:
        assert (
            await conn.execute(sa.select(sa.func.count()).select_from(centre_inbound))
        ).scalar() == 0


def test_inbound_schema_examples() -> None:
    assert inbound_errors(inbound_report(["+77011234567"])) == []
    assert inbound_errors({**inbound_report(["+77011234567"]), "category": "spam"}) != []


async def test_inbound_refuses_clients_of_another_ca_or_without_certificate(
    certs: CertSet, endpoint_config: EndpointConfig, tls_material: TlsMaterial
) -> None:
    opener = FakeOpener()
    async with CentreEndpoint(endpoint_config, opener) as ep:
        for foreign, tls12 in ((True, True), (True, False), (False, True), (False, False)):
            context = ssl.create_default_context(cafile=str(certs.operator_ca))
            if foreign:
                context.load_cert_chain(str(tls_material.client_cert), str(tls_material.client_key))
            if tls12:  # TLS 1.2 refuses during the handshake itself
                context.maximum_version = ssl.TLSVersion.TLSv1_2
            async with httpx.AsyncClient(verify=context, timeout=5) as client:
                with pytest.raises(httpx.TransportError) as info:
                    await client.post(ep.url + "/v1/reports", json=inbound_report(["+77011234567"]))
            # TLS 1.3 checks the client after the client's side of the handshake: the server
            # (Python's asyncio TLS) resets the connection without an alert
            assert _has_ssl_error(info.value) or not tls12, repr(info.value)
    assert opener.calls == []


# -- helpers ---------------------------------------------------------------------------------------


def _has_ssl_error(e: BaseException | None) -> bool:
    while e is not None:
        if isinstance(e, ssl.SSLError):
            return True
        e = e.__cause__ or e.__context__
    return False


async def _all_acked(store: Store, count: int) -> bool:
    rows = await CentreReports(store).all()
    return len(rows) == count and all(r["acked_at"] is not None for r in rows)


async def _all_done(store: Store) -> bool:
    rows = await CentreReports(store).all()
    return all(r["acked_at"] is not None or r["failed_at"] is not None for r in rows)


async def _attempted(store: Store, attempts: int) -> bool:
    rows = await CentreReports(store).all()
    return bool(rows) and rows[0]["attempts"] >= attempts
