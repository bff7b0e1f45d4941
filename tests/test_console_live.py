"""The console's Live page: the LiveFeed (counts per tick, notable messages, masking, bounded
subscribers) driven tick by tick with a given clock, and the page and its Server-Sent Events
stream over real HTTP (uvicorn on loopback: httpx's ASGI transport buffers whole responses, a
stream never ends there) on the API's real services (Cases on SQLite, the registry, the
simulated switch). The audit rows are the API's AuditLog, tested on both databases elsewhere."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest
from console_browser import chromium, session_cookie
from console_browser import login as browser_login
from helpers.console import hidden, sign_in_async
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from waiting import eventually

from gateway.api import ApiConfig, ApiServer, Role, build_api, hash_token
from gateway.api.audit import AuditLog, AuditQuery
from gateway.cases import Cases
from gateway.centre import CentreOutbox
from gateway.console import LiveFeed, SessionLimits, Sources, with_console
from gateway.console.i18n import translate
from gateway.console.live import StreamsFull, Subscription, mask_digits
from gateway.domain import Decision, Inspected, Reason, SmsEvent, Span, Verdict
from gateway.registry import Registry
from gateway.store import Store, sqlite_url
from gateway.switch.port import HttpSwitch
from gateway.workdays import KzCalendar, almaty_zone
from simulators.switch import SwitchSimulator

ALMATY = almaty_zone()
MONDAY = dt.datetime(2025, 12, 1, 10, 0, tzinfo=ALMATY).timestamp()
TOKENS = {role: f"live-{role.value}-token" for role in Role}
USERS = {role: f"u-{role.value}" for role in Role}
SUSPECT = "+77759876543"
VICTIM = "+77011234567"
TEXT = "Ваш код 482913. Карта 4400 4301 2345 6789 заблокирована: kaspi-bank.xyz/unlock"
URL_AT = TEXT.index("kaspi-bank.xyz")
CODE_AT = TEXT.index("482913")
# what digit masking would let through: a name, an address (words that occur nowhere else)
PERSONAL = "Айгерим Садыкова, ул. Абая 150-12, ваш код 482913: kaspi-bank.xyz/unlock"


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def sms(
    decision: Decision,
    text: str = TEXT,
    source: str = SUSPECT,
    spans: tuple[Span, ...] = (),
    score: float = 0.9,
) -> Inspected:
    reasons = (
        []
        if decision is Decision.ALLOW
        else [
            Reason("url", "url.lookalike.kaspi", score, "lookalike of a bank's domain", spans),
            Reason("content", "content.ru.code_request", 0.4, "asks for a code"),
        ]
    )
    event = SmsEvent(source, VICTIM, text, smsc="kcell-a2p", received_at=MONDAY - 0.5)
    return Inspected(event, Verdict(score, decision, reasons))


def caught(text: str = TEXT, **kw: Any) -> Inspected:
    spans = (Span(URL_AT, URL_AT + 14, "kaspi-bank.xyz"), Span(CODE_AT, CODE_AT + 6, "482913"))
    return sms(Decision.BLOCK, text, spans=spans, **kw)


def parse(raw: bytes) -> tuple[str, dict[str, Any]]:
    """(event name, data) of one SSE event as the feed sends it."""
    name, data = "", ""
    for line in raw.decode().splitlines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
    return name, json.loads(data)


async def next_event(sub: Subscription) -> tuple[str, dict[str, Any]]:
    async with asyncio.timeout(5):
        return parse(await anext(sub))


# -- the feed ---------------------------------------------------------------------------------


async def test_a_tick_counts_each_decision_and_keeps_only_the_caught_messages() -> None:
    clock = Clock(MONDAY)
    feed = LiveFeed(clock=clock)
    for _ in range(7):
        feed.add(sms(Decision.ALLOW))
    feed.add(sms(Decision.FLAG, "первое"))
    feed.add(sms(Decision.BLOCK, "второе"))
    feed.add(sms(Decision.FLAG, "третье"))
    feed.tick()  # nobody watches: counted for the history only
    async with feed.subscribe(masked=False) as sub:
        name, history = await next_event(sub)
        assert name == "history"
        assert history["ticks"] == [[MONDAY, 7, 2, 1]]
        assert [i["text"] for i in history["items"]] == ["первое", "второе", "третье"]
        feed.add(sms(Decision.ALLOW))
        feed.add(sms(Decision.BLOCK, "четвёртое"))
        clock.t += 1
        feed.tick()
        name, tick = await next_event(sub)
        assert name == "tick" and tick["t"] == MONDAY + 1
        assert tick["counts"] == {"allow": 1, "flag": 0, "block": 1}
        assert [(i["decision"], i["text"]) for i in tick["items"]] == [("block", "четвёртое")]
        clock.t += 1
        feed.tick()
        _, quiet = await next_event(sub)
        assert quiet["counts"] == {"allow": 0, "flag": 0, "block": 0} and quiet["items"] == []


async def test_a_tick_carries_at_most_the_newest_twenty_caught_messages() -> None:
    feed = LiveFeed(clock=Clock(MONDAY), recent=50)
    async with feed.subscribe(masked=False) as sub:
        await next_event(sub)
        for n in range(45):
            feed.add(sms(Decision.FLAG, f"сообщение {n}"))
        feed.tick()
        _, tick = await next_event(sub)
    assert tick["counts"]["flag"] == 45
    assert [i["text"] for i in tick["items"]] == [f"сообщение {n}" for n in range(25, 45)]


async def test_the_masked_payload_has_no_text_and_the_numbers_masked() -> None:
    feed = LiveFeed(clock=Clock(MONDAY))
    full_sub = feed.subscribe(masked=False)
    masked_sub = feed.subscribe(masked=True)
    for sub in (full_sub, masked_sub):
        await next_event(sub)
    feed.add(caught())
    feed.add(caught(source="KASPI"))
    feed.tick()
    (_, full), (_, masked) = await next_event(full_sub), await next_event(masked_sub)
    f, m = full["items"][0], masked["items"][0]
    # the full view: the suspect whole (as the MQTT alerts publish it), the victim masked
    assert f["source"] == SUSPECT and f["dest"] == "+7701***4567" and f["text"] == TEXT
    assert f["rules"] == ["url.lookalike.kaspi", "content.ru.code_request"]
    assert f["reasons"][0] == {
        "rule_id": "url.lookalike.kaspi", "detector": "url",
        "description": "lookalike of a bank's domain", "score": 0.9,
    }  # fmt: skip
    assert f["spans"] == [[CODE_AT, CODE_AT + 6], [URL_AT, URL_AT + 14]]  # sorted
    assert (f["decision"], f["score"], f["smsc"], f["at"]) == (
        "block",
        0.9,
        "kcell-a2p",
        MONDAY - 0.5,
    )
    assert f["hidden"] is False
    # the masked view (R7): no text and no spans at all, as the API shows such a role no
    # evidence text; what the decision rests on stays
    assert m["source"] == "+7775***6543" and m["dest"] == "+7701***4567"
    assert (m["text"], m["spans"], m["cut"], m["hidden"]) == ("", [], False, True)
    assert m["rules"] == f["rules"] and m["reasons"] == f["reasons"]
    assert [m[k] for k in ("decision", "score", "smsc", "route", "at", "local", "date")] == [
        f[k] for k in ("decision", "score", "smsc", "route", "at", "local", "date")
    ]
    assert masked["items"][1]["source"] == "KASPI"  # an alphanumeric sender id is no one's number
    for sub in (full_sub, masked_sub):
        sub.close()


async def test_a_long_text_is_cut_and_its_spans_clipped() -> None:
    feed = LiveFeed(clock=Clock(MONDAY))
    text = "а" * 470 + "kaspi-bank.xyz" + "б" * 100
    spans = (Span(470, 484, "kaspi-bank.xyz"), Span(500, 510, "бббббббббб"))
    async with feed.subscribe(masked=False) as sub:
        await next_event(sub)
        feed.add(sms(Decision.FLAG, text, spans=spans))
        feed.tick()
        _, tick = await next_event(sub)
    item = tick["items"][0]
    assert len(item["text"]) == 480 and item["cut"] is True
    assert item["spans"] == [[470, 480]]


def test_digits_of_any_script_are_masked() -> None:
    assert mask_digits("код ١٢٣ и １２３, 4400") == "код ••• и •••, ••••"


async def test_a_watcher_that_does_not_keep_up_is_dropped_not_buffered() -> None:
    feed = LiveFeed(clock=Clock(MONDAY), queue_size=4)
    slow = feed.subscribe(masked=True)
    fast = feed.subscribe(masked=True)
    await next_event(fast)
    for _ in range(10):
        feed.add(caught())
        feed.tick()
        await next_event(fast)
    assert slow.ended and feed.subscribers == 1
    async with asyncio.timeout(5):
        assert [raw async for raw in slow] == []  # what it had queued is dropped; it ends
    fast.close()
    assert feed.subscribers == 0


async def test_close_ends_every_subscription_and_the_later_ones_at_once() -> None:
    feed = LiveFeed(clock=Clock(MONDAY), keepalive=60.0)

    async def drain(sub: Subscription) -> int:
        return sum([1 async for _ in sub])

    readers = [asyncio.create_task(drain(feed.subscribe(masked=m))) for m in (True, False)]
    await asyncio.sleep(0.05)
    assert feed.subscribers == 2 and not any(r.done() for r in readers)
    feed.close()
    async with asyncio.timeout(5):
        assert await asyncio.gather(*readers) == [1, 1]  # the history, then the end
        assert await drain(feed.subscribe(masked=True)) == 0
    assert feed.subscribers == 0


async def test_run_ticks_by_itself_and_a_quiet_subscription_gets_keepalives() -> None:
    feed = LiveFeed(interval=0.02, clock=Clock(MONDAY))
    runner = asyncio.create_task(feed.run())
    try:
        async with feed.subscribe(masked=True) as sub:
            await next_event(sub)
            feed.add(caught())
            names = [(await next_event(sub))[0] for _ in range(3)]
            assert names == ["tick"] * 3
    finally:
        feed.close()
        async with asyncio.timeout(5):
            await runner  # run() returns once closed
    quiet = LiveFeed(keepalive=0.01)
    async with quiet.subscribe(masked=True) as sub:
        await anext(sub)
        async with asyncio.timeout(5):
            assert await anext(sub) == b":\n\n"


def test_the_hot_path_allocates_nothing_for_an_allowed_message() -> None:
    feed = LiveFeed()
    for _ in range(10_000):
        feed.add(sms(Decision.ALLOW))
    assert len(feed._notable) == 0 and feed._allow == 10_000
    for _ in range(100):
        feed.add(sms(Decision.FLAG))
    assert len(feed._notable) == 20  # bounded between ticks however many arrive


async def test_times_come_formatted_as_almaty_time() -> None:
    """The page shows these as they are: the browser's time-zone data may be older than
    Almaty's move to UTC+5 (2024)."""
    clock = Clock(MONDAY)
    feed = LiveFeed(clock=clock)
    feed.add(caught())
    feed.add(Inspected(SmsEvent(SUSPECT, VICTIM, "без времени"), Verdict(0.9, Decision.FLAG, [])))
    async with feed.subscribe(masked=True) as sub:
        _, history = await next_event(sub)
        assert history["local"] == "10:00:00"
        clock.t += 3601.0
        feed.tick()
        _, tick = await next_event(sub)
    assert tick["local"] == "11:00:01"
    item, untimed = tick["items"]
    assert (item["local"], item["date"]) == ("09:59:59", "01.12.2025")  # received 09:59:59.5
    assert (untimed["at"], untimed["local"]) == (MONDAY + 3601.0, "11:00:01")  # the tick's


async def test_no_word_of_a_text_reaches_a_masked_subscriber() -> None:
    """Names and addresses are personal data that masking digits would let through (R7)."""
    feed = LiveFeed(clock=Clock(MONDAY))
    feed.add(caught(PERSONAL))
    feed.tick()  # in the history
    full, masked = feed.subscribe(masked=False), feed.subscribe(masked=True)
    seen: dict[bool, list[str]] = {False: [], True: []}
    for sub in (full, masked):
        seen[sub.masked].append((await anext(sub)).decode())
    feed.add(caught(PERSONAL, source="+77751112233"))
    feed.tick()
    for sub in (full, masked):
        seen[sub.masked].append((await anext(sub)).decode())
        sub.close()
    words = ("Айгерим", "Садыкова", "Абая", "150-12", "482913", "unlock", "1112233")
    for body in seen[False]:  # the full payload carries them: the check below can fail
        assert all(w in body for w in words[:6]), body
    for body in seen[True]:
        assert [w for w in words if w in body] == [], body


async def test_one_stream_per_session_three_per_user_and_a_bounded_total() -> None:
    feed = LiveFeed(clock=Clock(MONDAY), max_streams=4)
    first = feed.subscribe(masked=False, session="s1", user="ann")
    await next_event(first)
    again = feed.subscribe(masked=False, session="s1", user="ann")  # a reload or a second tab
    assert await next_event(first) == ("end", {"reason": "replaced"})
    async with asyncio.timeout(5):
        assert [raw async for raw in first] == []  # it ends: no reconnect war with the new one
    assert first.ended and feed.subscribers == 1
    second = feed.subscribe(masked=False, session="s2", user="ann")
    third = feed.subscribe(masked=False, session="s3", user="ann")
    fourth = feed.subscribe(masked=False, session="s4", user="ann")  # the user's oldest goes
    assert again.ended and not any(x.ended for x in (second, third, fourth))
    assert feed.subscribers == 3
    bob = feed.subscribe(masked=True, session="b1", user="bob")
    assert feed.subscribers == 4
    assert not feed.room("b2", "bob") and not feed.room("c1", "carol")
    assert feed.room("b1", "bob") and feed.room("s5", "ann")  # each would replace one of its own
    with pytest.raises(StreamsFull) as refused:
        feed.subscribe(masked=True, session="c1", user="carol")
    assert refused.value.retry_after == 60
    assert feed.subscribers == 4 and not any(x.ended for x in (second, third, fourth, bob))
    bob.close()
    assert feed.room("c1", "carol")
    feed.subscribe(masked=True, session="c1", user="carol").close()
    with pytest.raises(ValueError):
        LiveFeed(max_streams=0)


# -- the page and the stream over HTTP ----------------------------------------------------------


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with await Store.open(sqlite_url(tmp_path / "data")) as st:
        await st.migrate()
        yield st


@pytest.fixture
async def api(store: Store) -> AsyncIterator[Any]:
    registry = Registry(store)
    tokens = {hash_token(TOKENS[r]): (USERS[r], r.value) for r in Role}
    async with (
        SwitchSimulator(token="tok", known={VICTIM}) as sim,
        HttpSwitch(sim.url, "tok", timeout=2.0) as switch,
    ):
        cases = Cases(
            store, KzCalendar(), switch=switch, registry=registry,
            reports=CentreOutbox("test-operator"), clock=Clock(MONDAY),
        )  # fmt: skip
        yield build_api(cases, registry, store, tokens, clock=Clock(MONDAY))


@pytest.fixture
def feed() -> LiveFeed:
    return LiveFeed(clock=Clock(MONDAY), keepalive=60.0)


class Serve(Protocol):
    async def __call__(self, feed: LiveFeed | None, clock: Clock | None = None) -> str: ...


@pytest.fixture
async def serve(api: Any) -> AsyncIterator[Serve]:
    """Start the API with the console on loopback, with `feed` as the live source and `clock`
    as the console's (its sessions'); its URL."""
    servers: list[ApiServer] = []

    async def start(feed: LiveFeed | None, clock: Clock | None = None) -> str:
        app = with_console(
            api, sources=Sources(live=feed), limits=SessionLimits(idle=600.0), clock=clock
        )
        server = ApiServer(ApiConfig(port=0), app)
        await server.start()
        servers.append(server)
        return server.url

    yield start
    for s in servers:
        await s.stop()


async def login(c: httpx.AsyncClient, role: Role) -> None:
    r = await sign_in_async(c, TOKENS[role])
    assert r.status_code == 303


async def sse(response: httpx.Response) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """The events of an SSE response as they arrive (comments and `retry` skipped)."""
    name = ""
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            yield name, json.loads(line[6:])


async def until_subscribers(feed: LiveFeed, n: int) -> None:
    await eventually(lambda: feed.subscribers == n, 5.0, f"{n} subscriber(s)")


async def live_rows(store: Store) -> list[tuple[str, bool]]:
    """Who opened the live stream, and whether with personal data (the API's audit rows)."""
    found = await AuditLog(store).find(AuditQuery(action="live.read"))
    assert all(e.target_kind == "live" for e in found)
    return [(e.user_id, e.personal_data) for e in found]


async def test_without_a_session_the_page_and_the_stream_send_to_the_login(
    serve: Serve, feed: LiveFeed
) -> None:
    async with httpx.AsyncClient(base_url=await serve(feed)) as c:
        for path in ("/console/", "/console/live/stream"):
            r = await c.get(path)
            assert r.status_code == 303 and r.headers["location"] == "/console/login"
    assert feed.subscribers == 0


async def test_the_page_has_the_chart_the_table_and_no_inline_script(
    serve: Serve, feed: LiveFeed
) -> None:
    async with httpx.AsyncClient(base_url=await serve(feed)) as c:
        await login(c, Role.ANALYST)
        r = await c.get("/console/?lang=en")
    assert r.status_code == 200 and "script-src 'self'" in r.headers["content-security-policy"]
    html = r.text
    needles = (
        'id="live-rows"', 'id="live-last-tick" data-ticks="0"', 'id="live-chart"',
        'src="/console/static/live.js"', "uPlot.iife.min.js", "<caption>",
        'data-block="blocked"', 'aria-label="Messages per second by decision',
    )  # fmt: skip
    for needle in needles:
        assert needle in html, needle
    assert re.search(r"<script(?![^>]*\bsrc=)", html) is None  # no inline script (CSP)
    assert "style=" not in html and "<style" not in html


async def test_an_analyst_streams_the_history_then_ticks_in_full_and_is_audited(
    serve: Serve, feed: LiveFeed, store: Store
) -> None:
    feed.add(caught())
    feed.tick()  # before anyone watches: in the history
    async with httpx.AsyncClient(base_url=await serve(feed)) as c:
        await login(c, Role.ANALYST)
        async with asyncio.timeout(10), c.stream("GET", "/console/live/stream") as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            assert r.headers["cache-control"] == "no-store"
            assert r.headers["x-accel-buffering"] == "no"
            events = sse(r)
            name, history = await anext(events)
            assert name == "history" and history["ticks"] == [[MONDAY, 0, 0, 1]]
            assert history["items"][0]["text"] == TEXT
            feed.add(sms(Decision.ALLOW))
            feed.add(caught(text="Срочно! kaspi-bank.xyz/unlock", source="+77750000001"))
            feed.tick()
            name, tick = await anext(events)
            assert name == "tick" and tick["counts"] == {"allow": 1, "flag": 0, "block": 1}
            item = tick["items"][0]
            assert (
                item["text"] == "Срочно! kaspi-bank.xyz/unlock" and item["source"] == "+77750000001"
            )
            assert item["dest"] == "+7701***4567"
            assert feed.subscribers == 1
        await until_subscribers(feed, 0)  # the client went: unsubscribed
    assert await live_rows(store) == [(USERS[Role.ANALYST], True)]


async def test_the_help_line_gets_the_masked_stream_unaudited_and_an_auditor_is_audited(
    serve: Serve, feed: LiveFeed, store: Store
) -> None:
    url = await serve(feed)
    for role in (Role.HELPLINE, Role.AUDITOR):
        async with httpx.AsyncClient(base_url=url) as c:
            await login(c, role)
            async with asyncio.timeout(10), c.stream("GET", "/console/live/stream") as r:
                events = sse(r)
                assert (await anext(events))[0] == "history"
                feed.add(caught())
                feed.tick()
                _, tick = await anext(events)
            item = tick["items"][0]
            assert item["source"] == "+7775***6543" and item["dest"] == "+7701***4567"
            assert (item["text"], item["spans"], item["hidden"]) == ("", [], True)
            assert item["rules"] == ["url.lookalike.kaspi", "content.ru.code_request"]
    assert await live_rows(store) == [(USERS[Role.AUDITOR], False)]


async def test_the_drain_and_a_sign_out_end_open_streams(serve: Serve, feed: LiveFeed) -> None:
    url = await serve(feed)
    async with httpx.AsyncClient(base_url=url) as c:
        await login(c, Role.SUPERVISOR)
        async with asyncio.timeout(10), c.stream("GET", "/console/live/stream") as r:
            events = sse(r)
            await anext(events)
            feed.close()  # the daemon's drain
            assert [e async for e in events] == []  # the response ended
    feed2 = LiveFeed(clock=Clock(MONDAY), keepalive=60.0)
    async with httpx.AsyncClient(base_url=await serve(feed2)) as c:
        await login(c, Role.ANALYST)
        page = await c.get("/console/")
        async with asyncio.timeout(10), c.stream("GET", "/console/live/stream") as r:
            events = sse(r)
            await anext(events)
            async with httpx.AsyncClient(base_url=c.base_url, cookies=c.cookies) as other:
                out = await other.post("/console/logout", data={"csrf": hidden(page.text, "csrf")})
                assert out.status_code == 303
            feed2.tick()
            assert [e async for e in events] == []  # the session is over: no more ticks
        await until_subscribers(feed2, 0)


async def test_a_process_without_traffic_says_so_and_its_stream_is_empty(serve: Serve) -> None:
    async with httpx.AsyncClient(base_url=await serve(None)) as c:
        await login(c, Role.ANALYST)
        page = await c.get("/console/?lang=en")
        stream = await c.get("/console/live/stream")
    assert page.status_code == 200 and "This process inspects no traffic" in page.text
    assert "live.js" not in page.text
    assert stream.status_code == 204 and stream.content == b""


async def test_a_second_stream_of_a_session_ends_the_first_and_a_user_has_three(
    serve: Serve, feed: LiveFeed
) -> None:
    url = await serve(feed)
    async with httpx.AsyncClient(base_url=url) as c:
        await login(c, Role.ANALYST)
        async with asyncio.timeout(10), c.stream("GET", "/console/live/stream") as first:
            events = sse(first)
            assert (await anext(events))[0] == "history"
            async with c.stream("GET", "/console/live/stream") as second:  # a reload, a tab
                later = sse(second)
                assert (await anext(later))[0] == "history"
                assert [e async for e in events] == [("end", {"reason": "replaced"})]
                assert feed.subscribers == 1
                feed.tick()
                assert (await anext(later))[0] == "tick"
        await until_subscribers(feed, 0)
    # one user signed in four times (4 sessions): 3 streams, the oldest ended
    clients = [httpx.AsyncClient(base_url=url) for _ in range(4)]
    try:
        for c in clients:
            await login(c, Role.SUPERVISOR)
        async with contextlib.AsyncExitStack() as stack:
            streams = []
            for c in clients:
                r = await stack.enter_async_context(c.stream("GET", "/console/live/stream"))
                assert r.status_code == 200
                streams.append(sse(r))
                assert (await anext(streams[-1]))[0] == "history"
            async with asyncio.timeout(10):
                assert [e async for e in streams[0]] == [("end", {"reason": "replaced"})]
            assert feed.subscribers == 3
    finally:
        for c in clients:
            await c.aclose()


async def test_streams_beyond_the_total_are_refused_and_the_page_says_so(
    serve: Serve, store: Store
) -> None:
    feed = LiveFeed(clock=Clock(MONDAY), keepalive=60.0, max_streams=2)
    url = await serve(feed)
    async with (
        httpx.AsyncClient(base_url=url) as analyst,
        httpx.AsyncClient(base_url=url) as supervisor,
        httpx.AsyncClient(base_url=url) as auditor,
    ):
        for c, role in ((analyst, Role.ANALYST), (supervisor, Role.SUPERVISOR),
                        (auditor, Role.AUDITOR)):  # fmt: skip
            await login(c, role)
        async with asyncio.timeout(10), supervisor.stream("GET", "/console/live/stream") as kept:
            assert kept.status_code == 200
            async with analyst.stream("GET", "/console/live/stream") as r:
                assert r.status_code == 200
                await until_subscribers(feed, 2)
                refused = await auditor.get("/console/live/stream")
                assert refused.status_code == 503 and refused.headers["retry-after"] == "60"
                page = await auditor.get("/console/?lang=en")
                assert page.status_code == 200 and 'id="live-full"' in page.text
                assert "Too many live pages" in page.text and "live.js" not in page.text
                again = await analyst.get("/console/")  # its own stream would be replaced
                assert "live.js" in again.text and 'id="live-full"' not in again.text
            await until_subscribers(feed, 1)
            page = await auditor.get("/console/")
            assert "live.js" in page.text and 'id="live-full"' not in page.text
            async with auditor.stream("GET", "/console/live/stream") as r:
                assert r.status_code == 200
    users = [u for u, _ in await live_rows(store)]
    assert users.count(USERS[Role.AUDITOR]) == 1  # the refused stream is not audited as a read


async def test_an_open_stream_does_not_keep_its_session_alive(serve: Serve, feed: LiveFeed) -> None:
    """Idle 600 s: a stream opened (or reopened by the browser) 500 s after the last page and
    watched for 200 s more ends with the session; neither counted as activity."""
    clock = Clock(MONDAY)
    async with httpx.AsyncClient(base_url=await serve(feed, clock)) as c:
        await login(c, Role.ANALYST)
        clock.t += 500.0
        async with asyncio.timeout(10), c.stream("GET", "/console/live/stream") as r:
            assert r.status_code == 200
            events = sse(r)
            await anext(events)
            feed.tick()
            assert (await anext(events))[0] == "tick"  # 500 s idle: alive
            clock.t += 200.0
            feed.tick()
            assert [e async for e in events] == []  # 700 s since the last page: over
        await until_subscribers(feed, 0)
        r = await c.get("/console/")
        assert r.status_code == 303 and r.headers["location"] == "/console/login"


# -- in a browser --------------------------------------------------------------------------------


@pytest.fixture
async def browser() -> AsyncIterator[WebDriver]:
    driver = await asyncio.to_thread(chromium)
    try:
        yield driver
    finally:
        await asyncio.to_thread(driver.quit)


@pytest.fixture
async def ticking(feed: LiveFeed) -> AsyncIterator[LiveFeed]:
    """The feed ticking by itself every 0.2 s, as in the daemon."""
    feed.interval = 0.2
    runner = asyncio.create_task(feed.run())
    yield feed
    feed.close()
    await runner


async def seen(check: Callable[[], object], timeout: float, what: str) -> None:
    """`eventually` for a check that drives the browser: run in a thread, the event loop
    serving the page meanwhile (a WebDriver call waits for a page being loaded)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await asyncio.to_thread(check):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.1)


def _in_browser(driver: WebDriver, base: str, role: Role) -> None:
    browser_login(driver, base, TOKENS[role])
    driver.get(f"{base}/console/")


async def test_in_a_browser_a_page_whose_session_ended_goes_to_the_login_page(
    serve: Serve, ticking: LiveFeed, browser: WebDriver
) -> None:
    url = await serve(ticking)
    await asyncio.to_thread(_in_browser, browser, url, Role.ANALYST)
    await until_subscribers(ticking, 1)
    csrf = hidden(await asyncio.to_thread(lambda: browser.page_source), "csrf")
    cookie = await asyncio.to_thread(session_cookie, browser)
    assert cookie is not None
    async with httpx.AsyncClient(base_url=url, cookies={cookie["name"]: cookie["value"]}) as c:
        r = await c.post("/console/logout", data={"csrf": csrf})  # signed out in another tab
        assert r.status_code == 303
    await until_subscribers(ticking, 0)

    def on_login() -> bool:  # the stream's reconnection is sent to the login page: reload
        return browser.current_url.endswith("/console/login") and bool(
            browser.find_elements(By.ID, "token")
        )

    await seen(on_login, 20.0, "the login page")


async def test_in_a_browser_a_masked_role_sees_no_text_and_the_server_s_times(
    serve: Serve, ticking: LiveFeed, browser: WebDriver
) -> None:
    url = await serve(ticking)
    await asyncio.to_thread(_in_browser, browser, url, Role.HELPLINE)
    await until_subscribers(ticking, 1)
    ticking.add(caught(PERSONAL))

    def rows() -> list[Any]:
        return browser.find_elements(By.CSS_SELECTOR, "#live-rows tr")

    await seen(lambda: len(rows()) == 1, 10.0, "the caught message's row")
    [row] = await asyncio.to_thread(rows)
    cells = await asyncio.to_thread(
        lambda: [td.text for td in row.find_elements(By.TAG_NAME, "td")]
    )
    at, decision, _score, sender, recipient, text, rules = cells
    assert at == "09:59:59" and decision == translate("ru", "live.block")
    assert "+7775***6543" in sender and recipient == "+7701***4567"
    assert text.split()[0] == "—" and translate("ru", "live.text_hidden") in text
    assert "url.lookalike.kaspi" in rules
    source = await asyncio.to_thread(lambda: browser.page_source)
    assert "Айгерим" not in source and "482913" not in source
    assert translate("ru", "live.texts_hidden") in source
    last = await asyncio.to_thread(lambda: browser.find_element(By.ID, "live-last-tick").text)
    assert last == "10:00:00"  # the feed's clock, as the server formats it


async def test_in_a_browser_a_second_tab_takes_the_stream_and_the_first_stops(
    serve: Serve, ticking: LiveFeed, browser: WebDriver
) -> None:
    url = await serve(ticking)
    await asyncio.to_thread(_in_browser, browser, url, Role.ANALYST)
    await until_subscribers(ticking, 1)
    first = await asyncio.to_thread(lambda: browser.current_window_handle)

    def second_tab() -> None:
        browser.switch_to.new_window("tab")
        browser.get(f"{url}/console/")

    await asyncio.to_thread(second_tab)
    replaced = translate("ru", "live.status.replaced")

    def first_says_replaced() -> bool:
        second = browser.current_window_handle
        browser.switch_to.window(first)
        said = browser.find_element(By.ID, "live-status").text == replaced
        browser.switch_to.window(second)
        return said

    await seen(first_says_replaced, 10.0, "the first tab stopped")
    kept = next(iter(ticking._subscribers))
    await asyncio.sleep(6.0)  # longer than the browser's reconnection delay (5 s)
    assert list(ticking._subscribers) == [kept] and not kept.ended  # no reconnection war


async def test_a_client_gone_before_its_stream_starts_frees_its_place(
    api: Any, feed: LiveFeed
) -> None:
    """Under ASGI 2.3 Starlette races the stream against the disconnect: a client already gone
    cancels the response before its generator runs; the subscription must still close."""
    from gateway.api.auth import Principal

    app = with_console(api, sources=Sources(live=feed), clock=Clock(MONDAY))
    s = app.console.sessions.create(Principal(USERS[Role.ANALYST], Role.ANALYST), MONDAY)
    asked = 0

    async def receive() -> dict[str, Any]:
        nonlocal asked
        asked += 1
        if asked == 1:
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.disconnect"}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        await asyncio.sleep(0)  # a real server's send may wait (flow control)

    scope = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
        "method": "GET", "scheme": "http", "path": "/console/live/stream", "raw_path": b"",
        "root_path": "", "query_string": b"", "server": ("t", 80), "client": ("10.0.0.1", 1),
        "headers": [(b"host", b"t"), (b"cookie", f"fg_session={s.id}".encode())],
    }  # fmt: skip
    async with asyncio.timeout(10):
        await app(scope, receive, send)
    assert sent[0]["status"] == 200  # answered, then cut short before the first event
    assert feed.subscribers == 0
