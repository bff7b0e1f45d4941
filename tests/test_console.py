"""The analysts' console over HTTP (pages, sessions, CSRF, roles, masking, audit), on the API's
real services: Cases on a real SQLite store, the registry, the simulated switch. Browser flows
are in test_console_browser.py."""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers.console import audit_rows, hidden, sign_in_async

from gateway.api import Role, build_api, hash_token
from gateway.cases import Actor, Cases, Evidence, State
from gateway.cases.model import Action, IllegalTransition
from gateway.centre import CentreOutbox
from gateway.console import SessionLimits, with_console
from gateway.console import i18n as texts
from gateway.console.compose import ConsoleDispatch
from gateway.console.sessions import SessionStore
from gateway.http.dispatch import PathDispatch
from gateway.registry import Registry
from gateway.store import Store, sqlite_url
from gateway.switch.port import HttpSwitch
from gateway.workdays import KzCalendar, almaty_zone
from simulators.switch import SwitchSimulator

ALMATY = almaty_zone()
# Monday 1 December 2025, 10:00 Almaty: Tuesday and Wednesday are working days
MONDAY = dt.datetime(2025, 12, 1, 10, 0, tzinfo=ALMATY).timestamp()
IIN = "900101300017"  # synthetic (KAZAKHSTAN.md)
MINE = ["+77011234567", "+77051234567", "+77071234567"]
TOKENS = {role: f"console-{role.value}-token" for role in Role}
USERS = {role: f"u-{role.value}" for role in Role}
CONSOLE = Path(__file__).resolve().parents[1] / "gateway" / "console"


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with await Store.open(sqlite_url(tmp_path / "data")) as st:
        await st.migrate()
        yield st


@pytest.fixture
async def registry(store: Store) -> Registry:
    reg = Registry(store)
    await reg.register_person(IIN, "Testova", "Aigerim", "Serikovna")
    for n in MINE:
        await reg.register_number(IIN, n, contract_date=dt.date(2020, 1, 1))
    return reg


@pytest.fixture
def clock() -> Clock:
    return Clock(MONDAY)


@pytest.fixture
async def sim() -> AsyncIterator[SwitchSimulator]:
    async with SwitchSimulator(token="tok", known=set(MINE)) as s:
        yield s


@pytest.fixture
async def cases(
    store: Store, registry: Registry, clock: Clock, sim: SwitchSimulator
) -> AsyncIterator[Cases]:
    async with HttpSwitch(sim.url, "tok", timeout=2.0) as switch:
        yield Cases(
            store, KzCalendar(), switch=switch, registry=registry,
            reports=CentreOutbox("test-operator"), clock=clock,
        )  # fmt: skip


@pytest.fixture
def app(cases: Cases, registry: Registry, store: Store, clock: Clock) -> ConsoleDispatch:
    tokens = {hash_token(TOKENS[r]): (USERS[r], r.value) for r in Role}
    api = build_api(cases, registry, store, tokens, clock=clock)
    limits = SessionLimits(idle=600.0, lifetime=3600.0)
    return with_console(api, limits=limits, clock=clock)


def client_for(app: Any, scheme: str = "http") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app, client=("10.1.2.3", 40000))
    return httpx.AsyncClient(transport=transport, base_url=f"{scheme}://console")


async def login(
    c: httpx.AsyncClient, role: Role | None, token: str | None = None
) -> httpx.Response:
    given = token if token is not None else TOKENS[role] if role is not None else ""
    return await sign_in_async(c, given)


async def look_up(c: httpx.AsyncClient, number: str) -> httpx.Response:
    """A subscriber look-up as the page makes it: POSTed with the CSRF token (no number in
    the URL)."""
    form = await c.get("/console/subscribers")
    return await c.post(
        "/console/subscribers", data={"csrf": hidden(form.text, "csrf"), "msisdn": number}
    )


async def open_case(
    cases: Cases, received: float, number: str = MINE[0], source: str = "complaint"
) -> str:
    view = await cases.open(
        source=source, numbers=[number], received_at=received,
        evidence=[Evidence("complaint", "cmp-1")],
    )  # fmt: skip
    return view.id


# -- login, sessions, CSRF ---------------------------------------------------------------------


async def test_login_sets_a_strict_httponly_session_cookie_and_logout_ends_it(
    app: ConsoleDispatch,
) -> None:
    async with client_for(app) as c:
        r = await login(c, Role.ANALYST)
        assert r.status_code == 303 and r.headers["location"] == "/console/"
        cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("fg_session="))
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
        assert "Secure" not in cookie  # plain HTTP here (the daemon sets it under TLS)
        assert TOKENS[Role.ANALYST] not in cookie  # the cookie names a session, not the token
        page = await c.get("/console/cases")
        assert page.status_code == 200
        out = await c.post("/console/logout", data={"csrf": hidden(page.text, "csrf")})
        assert out.status_code == 303
        assert len(app.console.sessions) == 0
        after = await c.get("/console/cases")
        assert after.status_code == 303 and after.headers["location"] == "/console/login"


async def test_the_session_cookie_is_secure_under_tls(cases: Cases, registry: Registry,
                                                      store: Store) -> None:  # fmt: skip
    api = build_api(cases, registry, store, {hash_token("t"): ("u", "analyst")})
    async with client_for(with_console(api, secure=True), "https") as c:
        r = await login(c, None, token="t")
        cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("fg_session="))
        assert "Secure" in cookie


@pytest.mark.parametrize("token", ["wrong", hash_token(TOKENS[Role.SUPERVISOR]), "", "x" * 600])
async def test_a_wrong_token_is_refused_without_a_session(app: ConsoleDispatch, token: str) -> None:
    async with client_for(app) as c:
        r = await login(c, None, token=token)
        assert r.status_code == 401
        assert "fg_session" not in r.headers.get("set-cookie", "")
        assert 'id="login-error"' in r.text
        assert len(app.console.sessions) == 0


async def test_a_login_without_its_form_token_is_refused(app: ConsoleDispatch) -> None:
    async with client_for(app) as c:
        r = await c.post("/console/login", data={"token": TOKENS[Role.ANALYST]})
        assert r.status_code == 403 and len(app.console.sessions) == 0


async def test_repeated_wrong_tokens_lock_the_client_out_even_for_a_right_one(
    app: ConsoleDispatch,
) -> None:
    async with client_for(app) as c:
        codes = [(await login(c, None, token=f"guess-{i}")).status_code for i in range(11)]
        assert codes == [401] * 10 + [429]  # ten at once; the eleventh is not even looked at
        r = await login(c, Role.ANALYST)
        assert r.status_code == 429 and len(app.console.sessions) == 0


async def test_a_session_ends_after_idle_time(app: ConsoleDispatch, clock: Clock) -> None:
    async with client_for(app) as c:
        await login(c, Role.ANALYST)
        clock.t += 599
        assert (await c.get("/console/cases")).status_code == 200
        clock.t += 601
        assert (await c.get("/console/cases")).status_code == 303


def test_session_store_is_bounded_and_gives_fresh_ids() -> None:
    from gateway.api.auth import Principal

    store = SessionStore(SessionLimits(idle=60.0, lifetime=120.0, max_sessions=3))
    who = Principal("u", Role.ANALYST)
    made = [store.create(who, 0.0) for _ in range(5)]
    assert len(store) == 3 and len({s.id for s in made}) == 5
    assert store.get(made[0].id, 1.0) is None and store.get(made[4].id, 1.0) is not None
    assert store.get(made[4].id, 200.0) is None  # over the lifetime, though not idle long
    assert not made[4].csrf_ok(None) and not made[4].csrf_ok(made[3].csrf)
    assert made[4].csrf_ok(made[4].csrf)
    # full: a session that is over goes before the least recently used live one
    kept = SessionStore(SessionLimits(idle=100.0, lifetime=120.0, max_sessions=2))
    old, live = kept.create(who, 0.0), kept.create(who, 50.0)
    assert kept.get(old.id, 60.0) is old  # used last, so `live` is the least recently used
    kept.create(who, 125.0)  # old is past its lifetime: it goes, live (idle 75 s) stays
    assert kept.get(live.id, 125.0) is live and kept.get(old.id, 125.0) is None


async def test_a_decision_without_the_csrf_token_changes_nothing(
    app: ConsoleDispatch, cases: Cases, store: Store
) -> None:
    case_id = await open_case(cases, MONDAY - 60)
    async with client_for(app) as c:
        await login(c, Role.ANALYST)
        for form in ({"reason": "checked"}, {"reason": "checked", "csrf": "forged"}):
            r = await c.post(f"/console/cases/{case_id}/start_verification", data=form)
            assert r.status_code == 403
            assert texts.translate("ru", "csrf")[:20] in r.text
    assert (await cases.get(case_id)).state is State.NEW
    assert [row["action"] for row in await audit_rows(store)] == []


# -- roles and pages ---------------------------------------------------------------------------

PAGES = {
    "/console/cases": {Role.ANALYST, Role.HELPLINE, Role.SUPERVISOR, Role.AUDITOR},
    "/console/subscribers": {Role.ANALYST, Role.HELPLINE, Role.SUPERVISOR},
    "/console/audit": {Role.SUPERVISOR, Role.AUDITOR},
}


@pytest.mark.parametrize("role", list(Role))
async def test_each_role_sees_only_its_pages_and_their_links(
    app: ConsoleDispatch, role: Role
) -> None:
    async with client_for(app) as c:
        r = await login(c, role)
        if role is Role.REGISTRAR:
            assert r.headers["location"] == "/console/none"
        for path, allowed in PAGES.items():
            page = await c.get(path)
            assert page.status_code == (200 if role in allowed else 403), (path, role)
            home = await c.get("/console/none")
            assert (f'href="{path}"' in home.text) == (role in allowed), (path, role)


async def test_decisions_are_exactly_the_state_tables_for_the_role(
    app: ConsoleDispatch, cases: Cases
) -> None:
    case_id = await open_case(cases, MONDAY - 60)
    async with client_for(app) as c:
        await login(c, Role.ANALYST)
        page = (await c.get(f"/console/cases/{case_id}")).text
        assert re.findall(r'id="do-([a-z_]+)"', page) == ["start_verification"]
        csrf = hidden(page, "csrf")
        r = await c.post(f"/console/cases/{case_id}/start_verification",
                         data={"csrf": csrf, "reason": "  "})  # fmt: skip
        assert r.status_code == 303  # a blank reason: nothing done, said on the page
        page = (await c.get(f"/console/cases/{case_id}")).text
        assert texts.translate("ru", "case.reason.required", n=2000) in page
        assert (await cases.get(case_id)).state is State.NEW
        await c.post(f"/console/cases/{case_id}/start_verification",
                     data={"csrf": csrf, "reason": "звонок абоненту"})  # fmt: skip
        page = (await c.get(f"/console/cases/{case_id}")).text
        assert sorted(re.findall(r'id="do-([a-z_]+)"', page)) == ["confirm", "reject"]
        # a decision the state does not allow: refused by the state table, said on the page
        r = await c.post(f"/console/cases/{case_id}/reopen", data={"csrf": csrf, "reason": "x"})
        page = (await c.get(r.headers["location"])).text
        refused = texts.translate(
            "ru",
            "case.not_now",
            action=texts.translate("ru", "action.reopen"),
            state=texts.translate("ru", "state.verifying"),
        )
        assert refused.split("(")[0] in html.unescape(page)  # said in the page's language
        # unblock is the supervisor's: 403 for an analyst whatever the state
        r = await c.post(f"/console/cases/{case_id}/unblock", data={"csrf": csrf, "reason": "x"})
        assert r.status_code == 403
    view = await cases.get(case_id)
    assert view.state is State.VERIFYING
    assert view.transitions[-1].actor == USERS[Role.ANALYST]
    assert view.transitions[-1].reason == "звонок абоненту"


async def test_a_confirmation_from_the_console_suspends_and_is_audited(
    app: ConsoleDispatch, cases: Cases, store: Store
) -> None:
    case_id = await open_case(cases, MONDAY - 60)
    await cases.start_verification(case_id, __import__("gateway.cases").cases.SYSTEM)
    async with client_for(app) as c:
        await login(c, Role.ANALYST)
        csrf = hidden((await c.get(f"/console/cases/{case_id}")).text, "csrf")
        await c.post(f"/console/cases/{case_id}/confirm",
                     data={"csrf": csrf, "reason": "ИИН 900101300017 подтвердил"})  # fmt: skip
    view = await cases.get(case_id)
    assert view.state is State.SUSPENDED
    assert view.decision_reason == "ИИН 9001******17 подтвердил"  # screened before storing
    actions = [r["action"] for r in await audit_rows(store)]
    assert actions[-1] == "case.confirm"


# -- masking and audit -------------------------------------------------------------------------


async def test_the_help_line_sees_masked_data_only_and_no_decisions(
    app: ConsoleDispatch, cases: Cases, store: Store
) -> None:
    case_id = await open_case(cases, MONDAY - 60)
    async with client_for(app) as c:
        await login(c, Role.HELPLINE)
        page = (await c.get(f"/console/cases/{case_id}")).text
        queue = (await c.get("/console/cases")).text
        lookup = (await look_up(c, "8 705 123 45 67")).text
    for text in (page, queue, lookup):
        for n in MINE:
            assert n not in text and n[1:] not in text
        assert IIN not in text and "Testova" not in text
    assert "+7701***4567" in page and "9001******17" in page and "T." in page
    assert 'id="no-actions"' in page and "do-confirm" not in page
    rows = await audit_rows(store)
    # look-ups of numbers are recorded whoever makes them; nothing personal was shown
    assert [(r["action"], r["personal_data"]) for r in rows] == [
        ("subscriber.read", False), ("subscriber.read", False)
    ]  # fmt: skip


async def test_an_analysts_unmasked_views_are_audited_before_they_are_sent(
    app: ConsoleDispatch, cases: Cases, store: Store
) -> None:
    case_id = await open_case(cases, MONDAY - 60)
    async with client_for(app) as c:
        await login(c, Role.ANALYST)
        page = (await c.get(f"/console/cases/{case_id}")).text
        await c.get("/console/cases")
        await look_up(c, "+77778889900")  # nobody's
    assert all(n in page for n in MINE) and IIN in page
    rows = [
        (r["action"], r["target"], r["personal_data"], r["client"]) for r in await audit_rows(store)
    ]
    assert rows == [
        ("case.read", case_id, True, "10.1.2.3"),
        ("subscriber.read", MINE[0], True, "10.1.2.3"),
        ("cases.read", "", True, "10.1.2.3"),
        ("subscriber.read", "+77778889900", False, "10.1.2.3"),
    ]


async def test_an_auditors_reads_are_audited_though_masked(
    app: ConsoleDispatch, cases: Cases, store: Store
) -> None:
    case_id = await open_case(cases, MONDAY - 60)
    async with client_for(app) as c:
        await login(c, Role.AUDITOR)
        page = (await c.get(f"/console/cases/{case_id}")).text
        log_page = (await c.get("/console/audit")).text
    assert MINE[0] not in page and IIN not in page
    rows = [(r["action"], r["personal_data"]) for r in await audit_rows(store)]
    assert rows[:3] == [("case.read", False), ("centre.read", False), ("audit.read", False)]
    assert "case.read" in log_page and case_id in log_page


async def test_when_the_database_is_down_a_page_says_so(app: ConsoleDispatch, store: Store) -> None:
    async with client_for(app) as c:
        await login(c, Role.ANALYST)
        await store.engine.dispose()
        await store.close()
        r = await c.get("/console/cases")
    assert r.status_code == 503
    assert texts.translate("ru", "unavailable") in r.text


# -- the queue ---------------------------------------------------------------------------------


async def test_the_queue_is_sorted_by_deadline_with_overdue_and_due_today_marked(
    app: ConsoleDispatch, cases: Cases, clock: Clock
) -> None:
    week = 7 * 86400
    late = await open_case(cases, MONDAY - week, MINE[0])  # verify_by last week: overdue
    today = await open_case(cases, MONDAY - 3 * 86400, MINE[1])  # Friday: due Tuesday? no
    fresh = await open_case(cases, MONDAY - 60, MINE[2])  # due Wednesday
    clock.t = dt.datetime(2025, 12, 3, 12, 0, tzinfo=ALMATY).timestamp()  # Wednesday noon
    async with client_for(app) as c:
        await login(c, Role.SUPERVISOR)
        page = (await c.get("/console/cases", params={"lang": "en"})).text
        only_new = (await c.get("/console/cases", params={"state": "closed"})).text
        by_source = (await c.get("/console/cases", params={"source": "detection_simbox"})).text
        complaints = (await c.get("/console/cases", params={"source": "complaint"})).text
    order = re.findall(r'<tr class="([a-z]+)" data-case="([0-9a-f]+)"', page)
    assert [cid for _, cid in order] == [late, today, fresh]
    marks = dict((cid, klass) for klass, cid in order)
    assert marks[late] == "overdue" and marks[fresh] == "today"
    assert "overdue by" in page and "due today" in page
    assert 'id="no-cases"' in only_new
    assert 'id="no-cases"' in by_source  # every case here is a complaint
    assert re.findall(r'data-case="([0-9a-f]+)"', complaints) == [late, today, fresh]


async def test_working_days_left_are_counted_in_kazakh_working_days() -> None:
    cal = KzCalendar()
    friday = dt.datetime(2025, 12, 12, 10, 0, tzinfo=ALMATY).timestamp()
    # Independence Day: 16 December (Tuesday) is a holiday; Monday 15th a working day
    tuesday_end = dt.datetime(2025, 12, 17, 23, 59, tzinfo=ALMATY).timestamp()
    klass, text = texts.due_text("en", tuesday_end, friday, cal)
    assert (klass, text) == ("later", "2 working day(s) left")
    assert texts.due_text("ru", friday - 3600, friday, cal)[0] == "overdue"


# -- texts, assets, headers, composition -------------------------------------------------------


def test_every_text_a_template_or_page_uses_exists_in_both_languages() -> None:
    used: set[str] = set()
    for f in [*CONSOLE.glob("templates/*.html"), *CONSOLE.glob("*.py")]:
        used |= set(
            re.findall(r'\bt(?:ranslate)?\((?:s\.lang, |lang, )?"([a-z_.0-9]+)"', f.read_text())
        )
    used = {k for k in used if "." in k and not k.endswith(".")}
    assert len(used) > 40
    for lang, table in texts.TEXTS.items():
        assert sorted(used - set(table)) == [], lang
    assert set(texts.EN) == set(texts.RU)
    assert "Қош келдіңіз" in texts.RU["welcome.kk"]


def test_the_vendored_chart_library_is_the_pinned_release() -> None:
    manifest = json.loads((CONSOLE / "static" / "vendor" / "vendor.json").read_text())
    for name, entry in manifest["files"].items():
        data = (CONSOLE / "static" / "vendor" / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], name
    assert manifest["package"] == "uplot" and manifest["version"] == "1.6.32"


async def test_pages_carry_a_strict_content_security_policy_and_no_inline_script(
    app: ConsoleDispatch, cases: Cases
) -> None:
    case_id = await open_case(cases, MONDAY - 60)
    async with client_for(app) as c:
        login_page = await c.get("/console/login")
        await login(c, Role.ANALYST)
        pages = [
            login_page,
            await c.get("/console/cases"),
            await c.get(f"/console/cases/{case_id}"),
        ]
    for r in pages:
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "<script>" not in r.text and " style=" not in r.text and "<style" not in r.text
        assert re.findall(r'(?:src|href)="(https?:)?//', r.text) == []  # nothing off the daemon


async def test_the_api_beside_the_console_still_wants_its_bearer_token(
    app: ConsoleDispatch,
) -> None:
    async with client_for(app) as c:
        await login(c, Role.SUPERVISOR)  # a console session is no API credential
        assert (await c.get("/v1/cases")).status_code == 401
        auth = {"Authorization": f"Bearer {TOKENS[Role.SUPERVISOR]}"}
        assert (await c.get("/v1/cases", headers=auth)).status_code == 200
        assert (await c.get("/console")).status_code == 200  # the bare prefix is the live page
        assert (await c.get("/consolex")).status_code == 401  # not the console: the API's


def test_a_dispatch_prefix_must_be_a_clean_path() -> None:
    for bad in ("console", "/console/"):
        with pytest.raises(ValueError):
            PathDispatch(None, {bad: None})  # type: ignore[dict-item,arg-type]


async def test_a_form_body_over_the_limit_is_refused_before_it_is_read(
    app: ConsoleDispatch,
) -> None:
    async with client_for(app) as c:
        await login(c, Role.ANALYST)
        r = await c.post("/console/cases/x/confirm", content=b"reason=" + b"a" * 40_000,
                         headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
        assert r.status_code == 413


# -- after the review: urgency, guards, headers, bounded state ---------------------------------


async def test_the_queue_never_cuts_an_overdue_case_for_newer_ones(
    cases: Cases, clock: Clock
) -> None:
    from gateway.cases import CaseFilter

    late = await open_case(cases, MONDAY - 30 * 86400, MINE[0])
    for i, n in enumerate(MINE[1:]):
        newer = await open_case(cases, MONDAY - 60 + i, n)
        await cases.start_verification(newer, Actor("u", "analyst"))
        await cases.reject(newer, Actor("u", "analyst"), "no")  # act_by running, later
    found = await cases.queue(CaseFilter(limit=2))
    assert len(found) == 2 and found[0].id == late


async def test_the_forms_offered_are_what_the_service_will_accept(
    app: ConsoleDispatch, cases: Cases
) -> None:
    analyst = Actor("u", "analyst")
    alpha = await cases.open(source="complaint", numbers=[], sender="KaspiBonus",
                             received_at=MONDAY - 60)  # fmt: skip
    held = await open_case(cases, MONDAY - 60)
    for case_id in (alpha.id, held):
        await cases.start_verification(case_id, analyst)
    await cases.confirm(alpha.id, analyst, "spoofed sender id")  # nothing here to suspend
    closed_alpha = await cases.get(alpha.id)  # so closed at once, nothing blocked: reopen
    assert await cases.open_actions(closed_alpha) == [Action.REOPEN]
    await cases.confirm(held, analyst, "confirmed")  # suspended on the switch
    await cases.close(held, analyst, "done")
    closed = await cases.get(held)
    assert closed.state is State.CLOSED
    # closed while blocked: unblock is open (to a supervisor), reopen is not (blocks first)
    assert await cases.open_actions(closed) == [Action.UNBLOCK]
    async with client_for(app) as c:
        await login(c, Role.ANALYST)
        page = (await c.get(f"/console/cases/{held}")).text
        assert re.findall(r'id="do-([a-z_]+)"', page) == []  # unblock is a supervisor's
    async with client_for(app) as c:
        await login(c, Role.SUPERVISOR)
        page = (await c.get(f"/console/cases/{held}")).text
        assert re.findall(r'id="do-([a-z_]+)"', page) == ["unblock"]


async def test_every_console_response_carries_the_security_headers(app: ConsoleDispatch) -> None:
    async with client_for(app) as c:
        answers = [
            await c.get("/console/cases"),  # a redirect to the login page
            await c.get("/console/static/console.css"),
            await c.get("/console/nothing-here"),
            await c.post("/console/login", content=b"x" * 40_000),  # the guard's 413
            await c.put("/console/login"),  # Starlette's 405
        ]
    assert [r.status_code for r in answers] == [303, 200, 404, 413, 405]
    for r in answers:
        assert "frame-ancestors 'none'" in r.headers.get("content-security-policy", ""), r
        assert r.headers["x-content-type-options"] == "nosniff"


async def test_one_user_cannot_push_everyone_elses_sessions_out(app: ConsoleDispatch) -> None:
    async with client_for(app) as analyst:
        await login(analyst, Role.ANALYST)
        for _ in range(12):
            async with client_for(app) as c:
                assert (await login(c, Role.HELPLINE)).status_code == 303
        assert (await analyst.get("/console/cases")).status_code == 200
    assert len(app.console.sessions) == 1 + 5  # the help line's five latest


def test_messages_for_the_next_page_and_failed_logins_stay_bounded() -> None:
    from gateway.api.auth import Principal
    from gateway.console.sessions import FailedLogins

    s = SessionStore().create(Principal("u", Role.ANALYST), 0.0)
    for i in range(200):
        s.say(f"message {i}")
    assert s.flash == [f"message {i}" for i in range(195, 200)]
    failed = FailedLogins(burst=10, every=6.0, keep=100)
    for i in range(1000):
        failed.failed(f"2001:db8::{i:x}", 0.0)
    assert len(failed) == 100
    assert failed.wait("2001:db8::3e7", 0.0) == 0.0  # one failure: no wait yet


async def test_a_login_page_says_the_configured_idle_time(app: ConsoleDispatch) -> None:
    async with client_for(app) as c:
        page = (await c.get("/console/login", params={"lang": "en"})).text
    assert "after 10 minutes idle" in page  # SessionLimits(idle=600) in the fixture


def test_a_deadline_years_away_is_said_without_counting_every_day() -> None:
    cal = KzCalendar()
    now = dt.datetime(2027, 12, 1, 10, 0, tzinfo=ALMATY).timestamp()
    klass, text = texts.due_text("en", MONDAY, now, cal)
    assert (klass, text) == ("overdue", "overdue since 01.12.2025")


async def test_the_help_line_sees_what_a_case_rests_on_but_no_text(
    app: ConsoleDispatch, cases: Cases
) -> None:
    case_id = await open_case(cases, MONDAY - 60)
    async with client_for(app) as c:
        await login(c, Role.HELPLINE)
        page = (await c.get(f"/console/cases/{case_id}")).text
    assert 'id="evidence-masked"' in page and "cmp-1" in page
    assert 'id="evidence-messages"' not in page


async def test_a_case_with_an_unblock_owed_by_the_switch_cannot_be_closed(
    cases: Cases, sim: SwitchSimulator
) -> None:
    """Closing it would strand the unblock (retries follow the latest round): the subscriber
    would stay cut off after a supervisor decided otherwise."""
    analyst, supervisor = Actor("u", "analyst"), Actor("s", "supervisor")
    case_id = await open_case(cases, MONDAY - 60)
    await cases.start_verification(case_id, analyst)
    await cases.confirm(case_id, analyst, "confirmed")
    assert (await cases.get(case_id)).state is State.SUSPENDED
    await sim.down()
    await cases.unblock(case_id, supervisor, "appeal upheld")
    view = await cases.get(case_id)
    assert view.state is State.SUSPENDED and view.pending_switch
    assert Action.CLOSE not in await cases.open_actions(view)
    with pytest.raises(IllegalTransition):
        await cases.close(case_id, analyst, "done")
    await sim.start()
    await cases.retry_pending()
    assert (await cases.get(case_id)).state is State.UNBLOCKED
