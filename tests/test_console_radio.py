"""The console's Campaigns and Probes pages (issue 16) over the real store (SQLite and
PostgreSQL), the real campaign detector and the real probe manager, through HTTP (ASGI).

Campaign alerts are made by the detector and written through the store's outbox path; probe
findings by the test-call matcher and `store.record_findings`, as the daemon does."""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import AsyncIterator, Callable
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from helpers.console import audit_rows, sign_in_async

from gateway.api import Role, build_api, hash_token
from gateway.cases import Cases
from gateway.console import Sources, i18n, with_console
from gateway.detect.campaigns import CampaignDetector
from gateway.domain import Alert, AlertKind, Route, SmsEvent
from gateway.pipeline.inspector import campaign_alert
from gateway.probes.manager import HealthLimits, ProbeManager, finding_alert
from gateway.probes.simbox import Expected, Finding, Outcome, TestCallMatcher
from gateway.registry import Registry
from gateway.store import Store
from gateway.switch.port import NoSwitch
from gateway.workdays import KzCalendar
from gsm_probe.events import IncomingCall, ProbeHealth, SmsReceived

ALMATY = ZoneInfo("Asia/Almaty")
NOW = dt.datetime(2025, 11, 14, 12, 0, tzinfo=ALMATY).timestamp()
T0 = NOW - 3 * 3600  # the campaign's first message, three hours ago
TOKENS = {role: f"secret-{role.value}-token" for role in Role}
NAMES = ("Айгерим", "Ерлан", "Данияр", "Жанна")
SIMBOX_SIM = "77011234567"  # the SIM-box SIM a test call named (synthetic)
SIMFARM_SIM = "77051234567"
DE = "+4915112345678"  # the test-call partner's A-number


def smishing(k: int) -> str:
    return (
        f"{NAMES[k % 4]}, ваша карта Kaspi заблокирована из-за подозрительной операции на "
        f"{k + 1} 000 тг. Перейдите по ссылке https://kaspi-secure.top/a{k}b и введите код"
    )


# -- the application ------------------------------------------------------------------------


@pytest.fixture
async def build(store: Store) -> AsyncIterator[Callable[[Sources], httpx.AsyncClient]]:
    """A console over the store with the given sources; clients closed after the test."""
    registry = Registry(store)
    cases = Cases(
        store, KzCalendar(), switch=NoSwitch(), registry=registry, reports=None,
        clock=lambda: NOW,
    )  # fmt: skip
    tokens = {hash_token(TOKENS[r]): (f"u-{r.value}", r.value) for r in Role}
    opened: list[httpx.AsyncClient] = []

    def make(sources: Sources) -> httpx.AsyncClient:
        api = build_api(cases, registry, store, tokens, clock=lambda: NOW)
        app = with_console(api, sources=sources, clock=lambda: NOW)
        transport = httpx.ASGITransport(app, client=("10.1.2.3", 40000))
        client = httpx.AsyncClient(transport=transport, base_url="http://t")
        opened.append(client)
        return client

    yield make
    for c in opened:
        await c.aclose()


async def login(client: httpx.AsyncClient, role: Role) -> None:
    done = await sign_in_async(client, TOKENS[role])
    assert done.status_code == 303, done.text


async def page(client: httpx.AsyncClient, path: str) -> str:
    r = await client.get(path)
    assert r.status_code == 200, r.text
    assert "<style" not in r.text and "style=" not in r.text  # CSP: no inline style
    assert "<script>" not in r.text  # nor inline scripts
    return html.unescape(r.text)


# -- campaigns ------------------------------------------------------------------------------


async def record_campaign(store: Store) -> tuple[CampaignDetector, str]:
    """A SIM farm's campaign: recognised at its 20th message, labelled by a complaint later,
    both alerts written through the outbox; the detector keeps tracking it."""
    det = CampaignDetector()
    for k in range(20):
        sms = SmsEvent(f"7705{k % 6:07d}", f"7707{k:07d}", smishing(k), route=Route.LOCAL)
        det.inspect(sms, T0 + k * 2.0)
    recognised = det.take_events()
    assert [e.kind for e in recognised] == ["recognised"]
    await store.record_findings([], [campaign_alert(e, T0 + 40) for e in recognised])
    for k in range(20, 30):
        sms = SmsEvent(f"7705{k % 6:07d}", f"7707{k:07d}", smishing(k), route=Route.LOCAL)
        det.inspect(sms, T0 + k * 2.0)
    det.label(recognised[0].campaign_id, "complaint", T0 + 100)
    labelled = det.take_events()
    await store.record_findings([], [campaign_alert(e, T0 + 100) for e in labelled])
    for k in range(30, 35):  # more arrive after the label: only this node's detector knows
        sms = SmsEvent(f"7705{k % 6:07d}", f"7707{k:07d}", smishing(k), route=Route.LOCAL)
        det.inspect(sms, T0 + 200 + k)
    return det, recognised[0].campaign_id


async def test_campaigns_page_shows_masked_sample_counts_and_timeline(
    store: Store, build: Callable[[Sources], httpx.AsyncClient]
) -> None:
    det, cid = await record_campaign(store)
    old: dict[str, object] = {"campaign_id": "0000aaaa000001", "event": "recognised", "label": None,
           "messages": 99, "senders": 9, "recipients": 99, "approximate": False,
           "first_seen": "2025-11-01T00:00:00.000Z", "last_seen": "2025-11-01T00:10:00.000Z",
           "routes": ["local"], "sample": "старая кампания"}  # fmt: skip
    other: dict[str, object] = {"outcome": "simbox", "number": SIMBOX_SIM}
    await store.record_findings(
        [],
        [
            Alert(AlertKind.CAMPAIGN, old, NOW - 8 * 86400),  # out of the 7-day window
            Alert(AlertKind.SIMBOX, other, NOW - 60),  # not a campaign
        ],
    )
    client = build(Sources(campaigns=det))
    await login(client, Role.HELPLINE)
    text = await page(client, "/console/campaigns?lang=en")

    assert "kaspi-secure.top/…" in text and "***, ваша карта Kaspi" in text  # masked sample
    assert "Ерлан" not in text and "kaspi-secure.top/a" not in text
    assert "7705" not in text and "7707" not in text  # no sender, no recipient
    assert f'href="/console/campaigns/{cid}"' in text
    row = text[text.index(f">{cid}</a>") :].split("</details>")[0]
    summary = row[: row.index("<details")]
    cells = [c.strip() for c in re.findall(r'<td class="num">(.*?)</td>', summary, re.S)]
    assert cells[0].startswith("30") and "35 now here" in cells[0]  # db: 30; node: 35
    assert cells[1:] == ["6", "30"]
    assert "complaint" in row and "local" in row
    assert "14.11.2025 09:00" in row  # first seen, Almaty time
    timeline = row[row.index("<details") :]
    assert timeline.index("labelled: complaint") < timeline.index("recognised")
    assert "Tracked now by this node's detector: 0 templates unlabelled, 1 labelled." in text
    assert "старая кампания" not in text  # older than the window
    assert text.count('<a href="/console/campaigns/') == 1

    ru = await page(client, "/console/campaigns?lang=ru")
    assert "Кампании" in ru and "жалоба" in ru and "Хронология" in ru


async def test_campaign_page_and_a_console_without_the_detector(
    store: Store, build: Callable[[Sources], httpx.AsyncClient]
) -> None:
    det, cid = await record_campaign(store)
    client = build(Sources())  # `fraudgate console`: database only
    await login(client, Role.AUDITOR)
    listing = await page(client, "/console/campaigns?lang=en")
    assert "This process does not inspect traffic" in listing and "now here" not in listing
    assert "kaspi-secure.top/…" in listing

    one = await page(client, f"/console/campaigns/{cid}?lang=en")
    assert f"Campaign {cid}" in one and "kaspi-secure.top/…" in one
    steps = one[one.index('<table class="steps">') :]
    assert re.search(r"labelled: complaint</td>\s*<td class=\"num\">30<", steps)
    assert re.search(r"recognised</td>\s*<td class=\"num\">20<", steps)
    assert "This process does not inspect traffic" in one

    assert (await client.get("/console/campaigns/ffffffff000000")).status_code == 404
    assert (await client.get("/console/campaigns/bad%20id%3C")).status_code == 404
    assert await audit_rows(store) == []  # campaigns carry no personal data

    here = build(Sources(campaigns=det))
    await login(here, Role.ANALYST)
    now_here = await page(here, f"/console/campaigns/{cid}?lang=en")
    assert "35 messages, 6 senders, 35 recipients" in now_here


# -- probes ---------------------------------------------------------------------------------


class Runner:
    """A probe supervisor that does nothing (the manager is not run: health is fed to it)."""

    def __init__(self, *_: Any) -> None:
        pass

    async def run(self) -> None:
        pass

    def stop(self) -> None:
        pass


class Published:
    def __init__(self) -> None:
        self.states: dict[str, dict[str, object]] = {}

    def notify(self) -> None:
        pass

    def set_state(self, topic: str, payload: dict[str, object]) -> None:
        self.states[topic] = payload


async def record_findings(store: Store) -> list[Finding]:
    """A SIM box, a SIM farm, a clean call and a test that never arrived, as the matcher
    concludes them; written as the probe manager writes them."""
    m = TestCallMatcher(grace=10)
    at = NOW - 600
    m.expect([
        Expected("p1", DE, at - 60, at + 60, "call", "carrier-A", id="t1"),
        Expected("p2", DE, at - 60, at + 60, "call", "carrier-B", id="t2"),
        Expected("p1", "KaspiBank", at - 60, at + 60, "sms", "aggregator-C", id="t3"),
        Expected("p2", "+905321234567", at - 60, at + 60, "call", "carrier-D", id="t4"),
    ])  # fmt: skip
    events: list[IncomingCall | SmsReceived] = [
        IncomingCall("p1", "+" + SIMBOX_SIM, 145, 0, at),
        IncomingCall("p2", DE, 145, 0, at + 1),
        SmsReceived("p1", "+" + SIMFARM_SIM, 1, "Ваш код: 4821", at=at + 2),
    ]
    found = [m.on_call(e) if isinstance(e, IncomingCall) else m.on_sms(e) for e in events]
    assert isinstance(events[2], SmsReceived)
    found += m.handle_timer(at + 100)
    assert [f.outcome for f in found] == [
        Outcome.SIMBOX, Outcome.CLEAN, Outcome.SIMFARM, Outcome.NO_ARRIVAL
    ]  # fmt: skip
    for f in found:
        alert = finding_alert(f)
        await store.record_findings([f], [alert] if alert else [])
    return found


def manager_with_health(store: Store) -> ProbeManager:
    clock = [NOW - 120]
    manager = ProbeManager(
        ["p1", "p2", "p3"], store, Published(), Runner,
        limits=HealthLimits(down_after=60, silent_after=3600), clock=lambda: clock[0],
    )  # fmt: skip
    manager.on_health(
        ProbeHealth("p1", True, True, 1, -71, "KZ KCELL", imsi="401021234567890",
                    msisdn="+77011110000", last_event_at=NOW - 30)
    )  # fmt: skip
    manager.on_health(ProbeHealth("p2", connected=False, error="port gone"))
    manager.on_health(ProbeHealth("p3", True, False, 3, -95, "", last_event_at=NOW - 30))
    clock[0] = NOW
    manager.on_health(ProbeHealth("p2", connected=False, error="port gone"))  # alerted now
    return manager


async def test_statuses_tell_each_probes_health_without_its_identity(store: Store) -> None:
    manager = manager_with_health(store)
    by_name = {s.name: s for s in manager.statuses(NOW)}
    assert list(by_name) == ["p1", "p2", "p3"]
    p1, p2, p3 = by_name["p1"], by_name["p2"], by_name["p3"]
    assert (p1.state, p1.problem, p1.signal_dbm, p1.operator) == ("up", "", -71, "KZ KCELL")
    assert p1.last_event_at == NOW - 30 and p1.bad_since is None and not p1.alerted
    assert (p2.state, p2.problem, p2.alerted) == ("unreachable", "unreachable: port gone", True)
    assert p2.bad_since == NOW - 120
    assert p3.state == "unregistered" and not p3.alerted and p3.bad_since == NOW - 120
    assert p3.problem == "not registered (+CREG stat 3)"
    later = {s.name: s for s in manager.statuses(NOW + 7200)}
    assert later["p1"].state == "silent" and later["p1"].problem.startswith("silent since")
    assert "401021234567890" not in repr(manager.statuses(NOW))
    assert "77011110000" not in repr(manager.statuses(NOW))


async def test_probes_page_for_the_analyst_shows_numbers_whole_and_is_audited(
    store: Store, build: Callable[[Sources], httpx.AsyncClient]
) -> None:
    await record_findings(store)
    client = build(Sources(probes=manager_with_health(store)))
    await login(client, Role.ANALYST)
    text = await page(client, "/console/probes?lang=en")

    health = text[text.index('<table class="probes"') : text.index("</table>")]
    assert re.search(r'<th scope="row">p1</th>\s*<td><span class="badge state-up">up<', health)
    assert "unreachable: port gone" in health and "not registered" in health
    assert "-71 dBm" in health and "KZ KCELL" in health
    assert "77011110000" not in text and "401021234567890" not in text  # the probe's SIM

    findings = text[text.index('<table class="findings"') :].split("</table>")[0]
    rows = findings.split("<tbody>")[1].split("</tr>")[:-1]
    assert len(rows) == 4
    assert "did not arrive" in rows[0] and "+905321234567" in rows[0]  # newest first
    assert "SIM farm" in rows[1] and SIMFARM_SIM in rows[1] and "KaspiBank" in rows[1]
    assert "clean" in rows[2] and DE in rows[2]
    assert "SIM box" in rows[3] and "+" + SIMBOX_SIM in rows[3] and "carrier-A" in rows[3]
    assert "0.95" in rows[3] and "14.11.2025 11:50:00" in rows[3]

    numbers = text[text.index('<table class="simbox"') :].split("</table>")[0]
    assert SIMBOX_SIM in numbers and SIMFARM_SIM in numbers and "aggregator-C" in numbers
    rows_audited = await audit_rows(store)
    assert [(r["user_id"], r["action"], r["target_kind"], r["personal_data"])
            for r in rows_audited] == [("u-analyst", "probes.read", "probes", True)]  # fmt: skip
    assert rows_audited[0]["client"] == "10.1.2.3"

    ru = await page(client, "/console/probes?lang=ru")
    assert "Состояние зондов" in ru and "SIM-бокс" in ru and "не дошёл" in ru
    assert len(await audit_rows(store)) == 2  # once per page view


async def test_probes_page_masks_numbers_for_the_help_line_and_the_auditor(
    store: Store, build: Callable[[Sources], httpx.AsyncClient]
) -> None:
    await record_findings(store)
    client = build(Sources())  # a console-only process: no probe manager here
    await login(client, Role.HELPLINE)
    text = await page(client, "/console/probes?lang=en")
    assert "This process does not drive probes" in text
    for whole in (SIMBOX_SIM, SIMFARM_SIM, DE, "905321234567"):
        assert whole not in text  # in no column, nor in a description
    assert "7701***4567" in text and "7705***4567" in text and "+4915***5678" in text
    assert "KaspiBank" in text  # a sender id is no subscriber's number
    assert "SIM box" in text and "carrier-A" in text
    assert await audit_rows(store) == []  # nothing personal shown: not audited

    auditor = build(Sources())
    await login(auditor, Role.AUDITOR)
    seen = await page(auditor, "/console/probes?lang=en")
    assert SIMBOX_SIM not in seen and "7701***4567" in seen
    assert [(r["user_id"], r["personal_data"]) for r in await audit_rows(store)] == [
        ("u-auditor", False)
    ]

    registrar = build(Sources())
    await login(registrar, Role.REGISTRAR)
    assert (await registrar.get("/console/probes")).status_code == 403
    assert (await registrar.get("/console/campaigns")).status_code == 403


async def test_pages_without_data_say_so(
    store: Store, build: Callable[[Sources], httpx.AsyncClient]
) -> None:
    manager = ProbeManager([], store, Published(), Runner)
    client = build(Sources(probes=manager))
    await login(client, Role.SUPERVISOR)
    probes = await page(client, "/console/probes?lang=en")
    assert "No probe is configured on this node." in probes
    assert "No finding recorded." in probes and "No number named." in probes
    campaigns = await page(client, "/console/campaigns?lang=en")
    assert "No campaign in the last 7 days." in campaigns
    anonymous = build(Sources())
    r = await anonymous.get("/console/probes")
    assert r.status_code == 303 and r.headers["location"] == "/console/login"


def test_every_outcome_state_event_and_label_has_its_texts() -> None:
    from gateway.detect.campaigns import LABELS

    keys = [f"probes.outcome.{o.value}" for o in Outcome]
    keys += [f"probes.state.{s}" for s in ("up", "unreachable", "unregistered", "silent")]
    keys += [f"campaigns.event.{e}" for e in ("recognised", "labelled", "tracked")]
    keys += [f"campaigns.label.{label}" for label in LABELS]
    keys += ["probes.test.call", "probes.test.sms", "probes.test.none"]
    for key in keys:
        assert key in i18n.EN and key in i18n.RU, key
        assert i18n.EN[key] != i18n.RU[key] or key in ("probes.test.sms",), key


async def test_probes_page_masks_every_digit_of_a_description_however_a_number_is_written(
    store: Store, build: Callable[[Sources], httpx.AsyncClient]
) -> None:
    """A number in a finding's free text, dotted or with several separators, is hidden from a
    role without personal data (every digit "•"); the number columns keep 7701***4567."""
    spellings = ("+7.701.123.45.67", "8 (701) 123-45-67", "+7 701 123 45 67", "87011234567")
    for k, spelled in enumerate(spellings):
        finding = Finding(
            Outcome.SIMBOX, "p1", NOW - 60 + k, spelled, 145, None, number=SIMBOX_SIM,
            description=f"звонок от {spelled} без анонса, ИИН 900101300017",
        )  # fmt: skip
        await store.record_findings([finding], [])
    for role in (Role.HELPLINE, Role.AUDITOR):
        client = build(Sources())
        await login(client, role)
        text = await page(client, "/console/probes?lang=en")
        findings = text[text.index('<table class="findings"') :].split("</table>")[0]
        rows = findings.split("<tbody>")[1].split("</tr>")[:-1]
        assert len(rows) == len(spellings)
        for row, spelled in zip(rows, reversed(spellings), strict=True):
            cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
            described = cells[-1]
            dots = re.sub(r"\d", "•", spelled)
            assert described == f"звонок от {dots} без анонса, ИИН {'•' * 12}"
            assert re.search(r"\d", described) is None
            assert spelled not in row and "900101300017" not in row
            observed = cells[6]
            assert re.search(r"\d{5}", observed) is None and "***4567" in observed, observed
        assert "7701***4567" in findings  # the named number's column
        assert "1234567" not in text and "123.45.67" not in text and "123-45-67" not in text
        assert "Digits in the texts are hidden for your role" in text

    analyst = build(Sources())
    await login(analyst, Role.ANALYST)
    whole = await page(analyst, "/console/probes?lang=en")
    for spelled in spellings:
        assert f"звонок от {spelled} без анонса" in whole
    assert "Digits in the texts are hidden" not in whole
