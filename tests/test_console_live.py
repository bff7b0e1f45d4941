"""The console's Live page: the LiveFeed (counts per tick, notable messages, masking, bounded
subscribers) driven tick by tick with a given clock, and the page and its Server-Sent Events
stream over real HTTP (uvicorn on loopback: httpx's ASGI transport buffers whole responses, a
stream never ends there) on the API's real services (Cases on SQLite, the registry, the
simulated switch). The audit rows are the API's AuditLog, tested on both databases elsewhere."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers.console import hidden, sign_in_async
from waiting import eventually

from gateway.api import ApiConfig, ApiServer, Role, build_api, hash_token
from gateway.api.audit import AuditLog, AuditQuery
from gateway.cases import Cases
from gateway.centre import CentreOutbox
from gateway.console import LiveFeed, SessionLimits, Sources, with_console
from gateway.console.live import Subscription, mask_digits
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


async def test_the_masked_payload_hides_every_digit_and_the_numbers_and_keeps_the_spans() -> None:
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
    # the masked view: no digit anywhere in the text, the same length and spans
    assert m["source"] == "+7775***6543" and m["dest"] == "+7701***4567"
    assert not any(c.isdigit() for c in m["text"]) and len(m["text"]) == len(TEXT)
    assert m["text"][URL_AT : URL_AT + 14] == "kaspi-bank.xyz"
    assert m["text"][CODE_AT : CODE_AT + 6] == "••••••"
    assert m["spans"] == f["spans"] and m["rules"] == f["rules"]
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


Serve = Callable[[LiveFeed | None], Awaitable[str]]


@pytest.fixture
async def serve(api: Any) -> AsyncIterator[Serve]:
    """Start the API with the console on loopback, with `feed` as the live source; its URL."""
    servers: list[ApiServer] = []

    async def start(feed: LiveFeed | None) -> str:
        app = with_console(api, sources=Sources(live=feed), limits=SessionLimits(idle=600.0))
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
            assert not any(ch.isdigit() for ch in item["text"])
            assert item["spans"] == [[CODE_AT, CODE_AT + 6], [URL_AT, URL_AT + 14]]
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
