"""Analysts' feedback on verdicts: template and sender keys, the exemptions the Inspector
consults (time injected), the repository and service on real SQLite and PostgreSQL, and the
refresher that keeps the in-memory exemptions in step with the database."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

import pytest

from gateway.domain import (
    Decision,
    Inspected,
    Reason,
    SmsEvent,
    Thresholds,
    Verdict,
)
from gateway.feedback import (
    Exemption,
    FeedbackInvalid,
    FeedbackLimits,
    FeedbackNotFound,
    FeedbackRefused,
    Judgement,
    Label,
    Scope,
    label_for,
    sender_key,
    template_key,
)
from gateway.feedback.cache import ExemptionCache, ExemptionRefresher
from gateway.feedback.repository import FeedbackQuery, FeedbackRepository
from gateway.feedback.service import FeedbackService
from gateway.pipeline.inspector import Inspector
from gateway.store import Store

T0 = 1_764_000_000.0
HOUR = 3600.0
BANK_NOTICE = "Kaspi: покупка 12 500 ₸ в Magnum. Код подтверждения 4821, никому не сообщайте"
VARIANT = "Kaspi: покупка 990 ₸ в Magnum. Код подтверждения 0017, никому не сообщайте"
PHISH = "Kaspi: покупка 990 ₸ в Magnum. Код 0017 введите на kaspi-secure.top/pay"


class Words:
    """A detector with two rules: a code request (flags) and a look-alike link (blocks)."""

    name = "content"

    def inspect(self, sms: SmsEvent, now: float) -> Sequence[Reason]:
        found = []
        if "код" in sms.text.lower():
            found.append(Reason("content", "content.ru.code_request", 0.6, "asks for a code"))
        if "kaspi-secure" in sms.text:
            found.append(Reason("url", "url.lookalike.kaspi", 0.9, "look-alike", block=True))
        return found


def sms(text: str = BANK_NOTICE, source: str = "77011112233", smsc: str = "smsc-p2p") -> SmsEvent:
    return SmsEvent(source=source, dest="77019998877", text=text, smsc=smsc, received_at=T0)


def inspector(cache: ExemptionCache) -> Inspector:
    return Inspector([Words()], Thresholds(), exemptions=cache)


def exemption(scope: Scope, key: str, *, hours: float = 24.0, id: str = "fb1") -> Exemption:
    return Exemption(id, scope, key, frozenset({"content.ru.code_request"}), T0 + hours * HOUR)


# -- keys and labels --------------------------------------------------------------------------


def test_template_key_ignores_codes_amounts_numbers_and_link_paths() -> None:
    assert template_key(BANK_NOTICE) == template_key(VARIANT)
    a = "Ваш заказ 5512 готов: kaspi.kz/shop/o/5512 или звоните +7 701 123 45 67"
    b = "ваш  заказ 98 готов: https://kaspi.kz/shop/o/98?x=1 или звоните 8 (705) 765-43-21"
    assert template_key(a) == template_key(b)
    assert len(template_key(a)) == 64 and int(template_key(a), 16) >= 0


def test_template_key_tells_another_host_or_other_words_apart() -> None:
    a = "Ваш заказ готов: kaspi.kz/shop/o/1"
    assert template_key(a) != template_key("Ваш заказ готов: kaspi-shop.top/shop/o/1")
    assert template_key(a) != template_key("Ваш заказ отменён: kaspi.kz/shop/o/1")


def test_sender_key_is_the_address_on_its_bind() -> None:
    assert sender_key("smsc-a2p", "KASPI") == sender_key("smsc-a2p", "kaspi") == "smsc-a2p/kaspi"
    assert sender_key("smsc-p2p", "+77011112233") == "smsc-p2p/77011112233"
    assert sender_key("smsc-a2p", "KASPI") != sender_key("smsc-intl", "KASPI")


def test_label_follows_the_decision_and_the_judgement() -> None:
    assert label_for(Judgement.WRONG, Decision.FLAG) is Label.LEGITIMATE
    assert label_for(Judgement.WRONG, Decision.BLOCK) is Label.LEGITIMATE
    assert label_for(Judgement.WRONG, Decision.ALLOW) is Label.FRAUD  # missed fraud
    assert label_for(Judgement.RIGHT, Decision.BLOCK) is Label.FRAUD
    assert label_for(Judgement.RIGHT, Decision.ALLOW) is Label.LEGITIMATE


# -- the Inspector with exemptions (time injected) -------------------------------------------


def test_sender_exemption_allows_the_senders_next_message_until_it_expires() -> None:
    cache = ExemptionCache()
    insp = inspector(cache)
    assert insp.inspect(sms(), T0).verdict.decision is Decision.FLAG
    cache.add(exemption(Scope.SENDER, sender_key("smsc-p2p", "77011112233"), hours=24))

    later = insp.inspect(sms(VARIANT), T0 + 23 * HOUR)
    assert later.verdict.decision is Decision.ALLOW
    assert later.verdict.rule_ids == ["feedback.exempt.fb1", "content.ru.code_request"]
    assert later.verdict.score == 0.6  # what it would have scored, kept for analysts
    assert later.alerts == []  # recorded, not alerted
    assert "would have been flag" in later.verdict.reasons[0].description
    assert "77011112233" not in later.verdict.reasons[0].description

    other = insp.inspect(sms(VARIANT, source="77015556677"), T0 + HOUR)
    elsewhere = insp.inspect(sms(VARIANT, smsc="smsc-intl"), T0 + HOUR)  # same id, other bind
    expired = insp.inspect(sms(VARIANT), T0 + 24 * HOUR)
    for item in (other, elsewhere, expired):
        assert item.verdict.decision is Decision.FLAG and len(item.alerts) == 1


def test_template_exemption_matches_a_variant_with_other_digits_from_anyone() -> None:
    cache = ExemptionCache()
    insp = inspector(cache)
    cache.add(exemption(Scope.TEMPLATE, template_key(BANK_NOTICE)))
    variant = insp.inspect(sms(VARIANT, source="KASPI", smsc="smsc-a2p"), T0 + 60)
    assert variant.verdict.decision is Decision.ALLOW
    assert variant.verdict.rule_ids[0] == "feedback.exempt.fb1"
    reworded = insp.inspect(sms("Назовите код из SMS оператору"), T0 + 60)
    assert reworded.verdict.decision is Decision.FLAG


def test_an_exemption_waives_only_the_findings_judged_wrong() -> None:
    """A look-alike link in a message from the exempt sender is evidence nobody judged."""
    cache = ExemptionCache()
    insp = inspector(cache)
    cache.add(exemption(Scope.SENDER, sender_key("smsc-p2p", "77011112233")))
    found = insp.inspect(sms(PHISH), T0 + 60)
    assert found.verdict.decision is Decision.BLOCK
    assert "feedback.exempt.fb1" not in found.verdict.rule_ids


def test_a_removed_exemption_no_longer_allows() -> None:
    cache = ExemptionCache()
    insp = inspector(cache)
    cache.add(exemption(Scope.SENDER, sender_key("smsc-p2p", "77011112233")))
    cache.remove("fb1")
    assert insp.inspect(sms(), T0 + 60).verdict.decision is Decision.FLAG
    assert len(cache) == 0


def test_cache_is_bounded_dropping_the_one_that_expires_first() -> None:
    cache = ExemptionCache(max_active=3)
    for i, hours in enumerate((5, 1, 9, 7)):
        cache.add(exemption(Scope.SENDER, f"b/{i}", hours=hours, id=f"e{i}"))
    assert len(cache) == 3
    assert cache.match(sms(source="1", smsc="b"), _flag(), T0) is None  # e1 (1 h) dropped
    assert cache.match(sms(source="3", smsc="b"), _flag(), T0) is not None


def test_a_reload_keeps_what_this_process_changed_while_it_read() -> None:
    cache = ExemptionCache()
    old = exemption(Scope.SENDER, "b/1", id="old")
    cache.add(old)
    since = cache.mark()  # the refresher starts reading the database (which has `old`) ...
    cache.add(exemption(Scope.SENDER, "b/2", id="new"))  # ... the API adds one meanwhile
    cache.remove("old")  # ... and revokes another
    cache.replace([old], since, T0)  # the read did not see either change
    assert cache.match(sms(source="2", smsc="b"), _flag(), T0) is not None
    assert cache.match(sms(source="1", smsc="b"), _flag(), T0) is None
    cache.replace([], cache.mark(), T0)  # a later read that saw both (the new one revoked too)
    assert len(cache) == 0


def _flag() -> Verdict:
    return Verdict(0.6, Decision.FLAG, [Reason("content", "content.ru.code_request", 0.6, "")])


# -- repository and service (SQLite and PostgreSQL) -------------------------------------------


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


async def record(
    store: Store, item: SmsEvent, decision: Decision, reasons: Sequence[Reason] = ()
) -> str:
    score = max((r.score for r in reasons), default=0.0)
    await store.record([Inspected(item, Verdict(score, decision, list(reasons)))])
    return item.id


CODE = Reason("content", "content.ru.code_request", 0.6, "asks for a code")
NOTE = Reason("sender", "sender.protected.kaspi", 0.0, "note")


async def test_service_gives_lists_and_revokes_on_the_database(store: Store) -> None:
    clock = Clock(T0)
    cache = ExemptionCache()
    service = FeedbackService(FeedbackRepository(store), cache, clock=clock)
    flagged = await record(store, sms(), Decision.FLAG, [CODE, NOTE])
    allowed = await record(store, sms("Привет, как дела?"), Decision.ALLOW)

    given = await service.give(flagged, Judgement.WRONG, Scope.SENDER, "the bank's own notice",
                               hours=None, actor="u-aigerim", role="analyst")  # fmt: skip
    assert given.label is Label.LEGITIMATE and given.key == "smsc-p2p/77011112233"
    assert given.rules == ("content.ru.code_request",)  # the note is not a finding
    assert given.expires_at == T0 + 24 * HOUR and len(cache) == 1
    missed = await service.give(allowed, Judgement.WRONG, Scope.MESSAGE, "a scam in disguise",
                                hours=None, actor="u-aigerim", role="analyst")  # fmt: skip
    assert missed.label is Label.FRAUD and missed.key is None and missed.expires_at is None

    repo = service.repository
    assert [f.id for f in await repo.find(FeedbackQuery())] == [missed.id, given.id]
    assert [f.id for f in await repo.find(FeedbackQuery(in_force_at=T0))] == [given.id]
    assert [f.id for f in await repo.find(FeedbackQuery(message_id=allowed))] == [missed.id]
    assert await repo.get(given.id) == given
    assert [e.id for e in await repo.active(T0 + 24 * HOUR - 1, 10)] == [given.id]
    assert await repo.active(T0 + 24 * HOUR, 10) == []  # expired

    clock.t += 60
    revoked = await service.revoke(given.id, by="u-erlan", reason="number hijacked")
    assert revoked.revoked_at == T0 + 60 and revoked.revoked_by == "u-erlan"
    assert await repo.get(given.id) == revoked
    assert len(cache) == 0 and await repo.active(clock.t, 10) == []
    with pytest.raises(FeedbackRefused) as e:
        await service.revoke(given.id, by="u-erlan", reason="again")
    assert e.value.code == "already_revoked"


async def test_service_refuses_what_cannot_be_exempted(store: Store) -> None:
    service = FeedbackService(
        FeedbackRepository(store), ExemptionCache(), FeedbackLimits(max_active=1), clock=Clock(T0)
    )
    flagged = await record(store, sms(), Decision.FLAG, [CODE])
    allowed = await record(store, sms("Привет"), Decision.ALLOW)
    erased = await record(store, sms(VARIANT), Decision.BLOCK, [CODE])
    await store.purge_text(T0 + 1)
    who = {"actor": "u-a", "role": "analyst"}

    async def refused(message_id: str, judgement: Judgement, scope: Scope, **kw: object) -> str:
        with pytest.raises((FeedbackRefused, FeedbackInvalid, FeedbackNotFound)) as e:
            await service.give(message_id, judgement, scope, "why", **{"hours": None, **who, **kw})  # type: ignore[arg-type]
        return e.value.code

    assert await refused("nope", Judgement.WRONG, Scope.MESSAGE) == "not_found"
    assert await refused(allowed, Judgement.WRONG, Scope.SENDER) == "not_applicable"
    assert await refused(flagged, Judgement.RIGHT, Scope.TEMPLATE) == "not_applicable"
    assert await refused(erased, Judgement.WRONG, Scope.TEMPLATE) == "text_erased"
    assert await refused(flagged, Judgement.WRONG, Scope.SENDER, hours=169) == "hours_out_of_range"
    await service.give(erased, Judgement.WRONG, Scope.SENDER, "ok", hours=1, **who)
    assert await refused(flagged, Judgement.WRONG, Scope.SENDER) == "too_many_exemptions"
    label = await service.give(erased, Judgement.WRONG, Scope.MESSAGE, "a label is fine", hours=5,
                               **who)  # fmt: skip
    assert label.expires_at is None  # hours are for exemptions


async def test_refresher_follows_another_gateway_on_the_same_database(store: Store) -> None:
    """Another process's exemption (and its revocation) reaches this cache on the next reload,
    and an expired one leaves it."""
    clock = Clock(T0)
    theirs = FeedbackService(FeedbackRepository(store), ExemptionCache(), clock=clock)
    mine = ExemptionCache()
    refresher = ExemptionRefresher(mine, FeedbackRepository(store), interval=0.05, clock=clock)
    flagged = await record(store, sms(), Decision.FLAG, [CODE])
    given = await theirs.give(flagged, Judgement.WRONG, Scope.TEMPLATE, "newsletter", hours=2,
                              actor="u-b", role="supervisor")  # fmt: skip
    await refresher.refresh()
    found = mine.match(sms(VARIANT, source="x"), _flag(), T0 + 60)
    assert found is not None and found.id == given.id and found.scope is Scope.TEMPLATE
    await theirs.revoke(given.id, by="u-b", reason="too broad")
    await refresher.refresh()
    assert len(mine) == 0

    again = await theirs.give(flagged, Judgement.WRONG, Scope.SENDER, "ok", hours=1,
                              actor="u-b", role="supervisor")  # fmt: skip
    async with refresher:  # the background loop
        await _until(lambda: len(mine) == 1)
        clock.t = T0 + 2 * HOUR
        await _until(lambda: len(mine) == 0)
    assert again.expires_at == T0 + HOUR


async def _until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "not reached in time"
        await asyncio.sleep(0.02)
