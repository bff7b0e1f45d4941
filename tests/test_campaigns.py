"""Campaigns across senders (SIM farms): fingerprints, clustering of near-duplicates, recognition
by distinct senders and recipients in a window, labels, events, memory bounds, snapshots and
robustness. Timing is measured by `python -m gateway.detect.campaigns_bench`, never here."""

from __future__ import annotations

import base64
import json
import random
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.detect.campaigns import (
    CampaignDetector,
    CampaignLimits,
    SnapshotError,
    fingerprint,
    mask_sample,
    sketch,
    sketch_many,
)
from gateway.detect.campaigns_bench import UCI, merge_quality, read_real_corpus, read_uci
from gateway.domain import Decision, Reason, Route, SmsEvent, Thresholds, Verdict, combine

CORPUS = Path(__file__).resolve().parent.parent / "config" / "corpus"
NAMES = ("Айгерим", "Ерлан", "Данияр", "Жанна", "Асель", "Нурлан", "Ольга", "Сергей", "Дина",
         "Марат", "Гульнара", "Тимур")  # fmt: skip
SMISHING = (
    "{name}, ваша карта Kaspi {blocked} из-за {odd} операции на {amount} тг. Для разблокировки "
    "{go} по ссылке https://kaspi-secure.top/{path} и введите код из SMS{junk}"
)


def smishing(rng: random.Random) -> str:
    """The template as a SIM farm varies it: name, amount, link path, a few synonyms and a
    random tag against exact-match filters."""
    return SMISHING.format(
        name=rng.choice(NAMES),
        blocked=rng.choice(("заблокирована", "временно заблокирована", "будет заблокирована")),
        odd=rng.choice(("подозрительной", "сомнительной")),
        amount=f"{rng.randint(1, 500)} {rng.randint(0, 999):03d}",
        go=rng.choice(("перейдите", "пройдите", "зайдите")),
        path="".join(rng.choices("abcdefghijkmnpqrstuvwxyz0123456789", k=rng.randint(4, 9))),
        junk=rng.choice(("", "", f" ({''.join(rng.choices('абвгдежзик', k=3))})")),
    )


def template(name: str = "Ерлан") -> str:
    return SMISHING.format(name=name, blocked="заблокирована", odd="подозрительной",
                           amount="5 000", go="перейдите", path="abc", junk="")  # fmt: skip


def sms(text: str, source: str = "77010000001", dest: str = "77020000001",
        route: Route = Route.LOCAL) -> SmsEvent:  # fmt: skip
    return SmsEvent(source, dest, text, route=route)


def rule_ids(reasons: object) -> list[str]:
    assert isinstance(reasons, list | tuple)
    return [r.rule_id for r in reasons if isinstance(r, Reason)]


def farm(det: CampaignDetector, n: int, sims: int = 60, t0: float = 1000.0,
         seed: int = 1) -> list[list[str]]:  # fmt: skip
    """n messages of the smishing template from `sims` rotating SIMs, each to distinct
    recipients (a SIM sends n / sims messages: far below any per-sender limit)."""
    rng = random.Random(seed)
    out = []
    for k in range(n):
        text = smishing(rng)
        ev = sms(text, f"7705{k % sims:07d}", f"7707{k:07d}")
        out.append(rule_ids(det.inspect(ev, t0 + k * 2.0)))
    return out


# --------------------------------------------------------------------------------------------
# Fingerprint and sketch


def test_fingerprint_keeps_the_template_only() -> None:
    a = fingerprint(
        "Айгерим, переведите 50 000,00 тг на +7 (701) 234-56-78 https://x-pay.top/a/b?c=1"
    )
    b = fingerprint("Айгерим, переведите 7 тг на 87012345678   x-pay.top/zz")
    assert a == b
    assert "x-pay.top" in a and "/a/b" not in a and "50" not in a and "701" not in a
    assert "  " not in a
    # look-alike letters and leet read as the rules read them
    assert fingerprint("ВАША KAPTA") == fingerprint("Ваша карта")  # Latin K, A, P, T


def test_sketch_is_stable_across_processes_and_versions() -> None:
    # Snapshots keep signatures: they must not depend on hash randomisation or numpy's RNG.
    sig = sketch(fingerprint(template()))
    assert sig.dtype.itemsize == 2 and sig.shape == (32,)
    assert sig.tobytes().hex()[:32] == EXPECTED_SKETCH_PREFIX


EXPECTED_SKETCH_PREFIX = "7000e2000200f803200285022a019000"


def test_sketching_a_batch_gives_each_text_its_own_sketch() -> None:
    rng = random.Random(10)
    fps = [fingerprint(smishing(rng)) for _ in range(20)]
    fps += ["abcd", "😀😀😀😀😀", "\ud800 lone \udfff", "Ш" * 1500, "\uffff" * 30 + "x"]
    rows = sketch_many(fps)
    for fp, row in zip(fps, rows, strict=True):
        assert (row == sketch(fp)).all(), fp[:20]


def test_prepared_batches_change_nothing_but_the_cost() -> None:
    rng = random.Random(11)
    events = [sms(smishing(rng), f"7705{k % 60:07d}", f"7707{k:07d}") for k in range(200)]
    events += [sms(t, f"7708{k:07d}") for k, t in enumerate(read_real_corpus()[:300])]
    plain, batched = CampaignDetector(), CampaignDetector()
    out_plain = [rule_ids(plain.inspect(e, 1000.0 + k)) for k, e in enumerate(events)]
    out_batched: list[list[str]] = []
    for i in range(0, len(events), 8):
        batched.prepare(events[i : i + 8])
        for k in range(i, min(i + 8, len(events))):
            out_batched.append(rule_ids(batched.inspect(events[k], 1000.0 + k)))
    assert out_plain == out_batched
    assert plain.tracked == batched.tracked


def test_variants_join_one_cluster_unrelated_do_not() -> None:
    det = CampaignDetector()
    rng = random.Random(3)
    for k in range(40):
        det.inspect(sms(smishing(rng), f"7705{k:07d}", f"7707{k:07d}"), 1000.0 + k)
    ids = {det.cluster_of(smishing(rng)) for _ in range(50)}
    assert len(ids) == 1 and None not in ids
    unrelated = "Мама, я задержусь на работе до восьми, купи хлеба и молока по пути"
    assert det.cluster_of(unrelated) is None


# --------------------------------------------------------------------------------------------
# Recognition


def test_simfarm_campaign_recognised_and_flagged() -> None:
    det = CampaignDetector()
    results = farm(det, 300, sims=60)
    flagged = [i for i, ids in enumerate(results) if "campaign.simfarm" in ids]
    first = flagged[0] + 1
    # 20 distinct recipients are needed: recognised at the 20th message when every variant
    # joins the template's cluster.
    assert 20 <= first <= 25, first
    later = results[first:]
    assert sum("campaign.simfarm" in ids for ids in later) >= 0.95 * len(later)
    events = det.take_events()
    assert [e.kind for e in events] == ["recognised"]
    e = events[0]
    assert e.senders >= 5 and e.recipients >= 20 and e.messages == first
    assert e.routes == ("local",) and e.label is None
    assert "kaspi-secure.top" in e.sample and not any(c.isdigit() for c in e.sample)
    assert not any(n in e.sample for n in NAMES)  # names differ between variants: masked
    payload = json.loads(json.dumps(e.payload()))
    assert payload["campaign_id"] == e.campaign_id and payload["kind"] == "recognised"
    assert det.take_events() == []  # once
    # A campaign reason flags, never blocks alone.
    reason = next(r for r in det.inspect(sms(smishing(random.Random(9))), 2000.0))
    assert combine([reason], Thresholds()).decision is Decision.FLAG
    assert "senders" in reason.description and "7705" not in reason.description


def test_few_senders_or_few_recipients_is_not_a_campaign() -> None:
    rng = random.Random(2)
    # one SIM to 100 recipients: velocity's business, not a campaign across senders
    det = CampaignDetector()
    out = [det.inspect(sms(smishing(rng), "77050000001", f"7707{k:07d}"), 1000.0 + k)
           for k in range(100)]  # fmt: skip
    # 50 senders to the same 3 recipients
    det = CampaignDetector()
    out += [det.inspect(sms(smishing(rng), f"7706{k:07d}", f"770800000{k % 3}"), 1200.0 + k)
            for k in range(50)]  # fmt: skip
    assert not any(out)


def test_a2p_otp_to_ten_thousand_subscribers_raises_nothing() -> None:
    det = CampaignDetector()
    for k in range(10_000):
        text = f"Ваш код подтверждения {k % 9000 + 1000}. Никому не сообщайте его. Kaspi.kz"
        ev = sms(text, "Kaspi.kz", f"7701{k:07d}", Route.A2P)
        assert det.inspect(ev, 1000.0 + k * 0.01) == ()
    assert det.tracked["clusters"] == 0 and det.take_events() == []


def test_a2p_members_of_a_labelled_cluster_are_not_scored() -> None:
    det = CampaignDetector()
    text = template()
    det.label(text, "complaint", 0.0)
    assert det.inspect(sms(text, "KaspiBank", route=Route.A2P), 1.0) == ()


@pytest.mark.parametrize(
    "text",
    [
        "С Новым годом! Желаю счастья, здоровья, любви и всего самого наилучшего в новом году! "
        "Пусть сбудутся все мечты!",
        "Наурыз мейрамы құтты болсын! Отбасыңызға амандық, береке мен бақыт тілеймін!",
        "Поздравляю с 8 Марта! Желаю весеннего настроения, улыбок и исполнения желаний!",
        "Извините, не могу сейчас говорить. Перезвоню позже",  # a phone's quick reply
    ],
)
def test_the_same_greeting_from_a_hundred_people_is_not_a_campaign(text: str) -> None:
    det = CampaignDetector()
    for k in range(100):
        for j in range(5):
            ev = sms(text, f"7705{k:07d}", f"7707{k * 5 + j:07d}")
            assert not det.inspect(ev, 1000.0 + k + j / 10)
    assert det.take_events() == []
    assert det.cluster_of(text) is not None  # tracked (can be labelled), not recognised


def test_a_greeting_with_a_link_is_recognised() -> None:
    det = CampaignDetector()
    text = ("С Новым годом! Kaspi дарит каждому клиенту 50 000 тг, заберите подарок на "
            "kaspi-gift.top/ny до 1 января")  # fmt: skip
    flagged = [bool(det.inspect(sms(text, f"7705{k % 10:07d}", f"7707{k:07d}"), 1000.0 + k))
               for k in range(40)]  # fmt: skip
    assert any(flagged)


def test_recognition_counts_only_the_window() -> None:
    # 30 senders to 30 recipients, one message every 4 minutes: the cluster lives (each
    # message within the window of the last), but no 15 minutes hold 5 senders.
    det = CampaignDetector()
    rng = random.Random(4)
    for k in range(30):
        ev = sms(smishing(rng), f"7705{k:07d}", f"7707{k:07d}")
        assert not det.inspect(ev, 1000.0 + k * 240.0)
    assert det.tracked["clusters"] == 1


# --------------------------------------------------------------------------------------------
# Labels


def test_complaint_labels_later_members_at_once() -> None:
    det = CampaignDetector()
    complained = template()
    cid = det.label(complained, "complaint", 100.0)  # never seen before: creates the cluster
    assert cid is not None and det.cluster_of(complained) == cid
    assert det.take_events() == []  # one text is no campaign: announced with a 2nd sender
    rng = random.Random(5)
    for k in range(20):
        reasons = det.inspect(sms(smishing(rng), f"7705{k:07d}"), 101.0 + k)
        assert rule_ids(reasons) == ["campaign.labelled.complaint"]
        assert reasons[0].score == 0.9
        assert combine(list(reasons), Thresholds()).decision is Decision.BLOCK
        if k == 1:
            [event] = det.take_events()
            assert (event.kind, event.label, event.campaign_id) == ("labelled", "complaint", cid)
            assert "Ерлан" not in event.sample and "5 000" not in event.sample
    assert det.take_events() == []  # once
    assert len(det.members(cid)) == 20


def test_strongest_label_wins() -> None:
    det = CampaignDetector()
    text = template()
    cid = det.label(text, "blocked", 0.0)
    assert cid is not None
    assert det.label(cid, "complaint", 1.0) == cid  # by id
    assert det.label(text, "blocked", 2.0) == cid  # weaker: ignored
    assert det.label(cid, "lookalike_link", 3.0) == cid  # weaker: ignored
    assert det.label(cid, "confirmed_case", 4.0) == cid
    labels = [(e.kind, e.label) for e in det.take_events()]
    assert labels == []  # no second sender yet: not announced
    assert rule_ids(det.inspect(sms(text, "77050000001"), 5.0)) == [
        "campaign.labelled.confirmed_case"
    ]
    assert rule_ids(det.inspect(sms(text, "77050000002"), 6.0)) == [
        "campaign.labelled.confirmed_case"
    ]
    labels = [(e.kind, e.label) for e in det.take_events()]
    assert labels == [("labelled", "confirmed_case")]  # the strongest, once
    with pytest.raises(ValueError, match="unknown label"):
        det.label(cid, "spam", 6.0)
    assert det.label("ok", "complaint", 7.0) is None  # too short to be a template


def test_labelled_campaign_keeps_both_reasons() -> None:
    det = CampaignDetector()
    farm(det, 40)
    cid = det.cluster_of(smishing(random.Random(8)))
    assert cid is not None
    det.label(cid, "lookalike_link", 2000.0)
    ids = rule_ids(det.inspect(sms(smishing(random.Random(8))), 2001.0))
    assert ids == ["campaign.labelled.lookalike_link", "campaign.simfarm"]


def _verdict(*reasons: Reason) -> Verdict:
    return combine(list(reasons), Thresholds())


def test_learn_blocked_needs_other_detectors_strong_evidence() -> None:
    det = CampaignDetector()
    text = template()
    own = Reason("campaign", "campaign.labelled.complaint", 0.9, "x")
    weak = Reason("classifier", "classifier.fraud", 0.5, "x")
    det.learn_blocked(sms(text), _verdict(own, weak), 0.0)  # its own reasons do not count
    assert det.cluster_of(text) is None
    det.learn_blocked(sms(text, route=Route.A2P), _verdict(Reason("content", "c", 0.95, "x")), 0)
    assert det.cluster_of(text) is None
    det.learn_blocked(sms(text), _verdict(Reason("content", "c.safe", 0.85, "x")), 1.0)
    cid = det.cluster_of(text)
    assert cid is not None
    assert det.take_events() == []  # announced when a second sender sends it
    det.inspect(sms(text, "77050000008"), 1.5)
    det.inspect(sms(text, "77050000009"), 1.6)
    assert [e.label for e in det.take_events()] == ["blocked"]
    other = "Ваш родственник попал в ДТП, срочно переведите деньги на лечение, номер +77011112233"
    det.learn_blocked(sms(other), _verdict(Reason("url", "u", 0.3, "x", block=True)), 2.0)
    assert det.cluster_of(other) is not None


# --------------------------------------------------------------------------------------------
# Queries, memory


def test_cluster_ids_are_stable() -> None:
    # derived from the first member's signature and time: the same traffic, the same ids
    a, b = CampaignDetector(), CampaignDetector()
    farm(a, 30)
    farm(b, 30)
    text = smishing(random.Random(12))
    assert a.cluster_of(text) == b.cluster_of(text) is not None


def test_members_are_recent_ids_oldest_first() -> None:
    det = CampaignDetector(CampaignLimits(recent_ids=50))
    text = "Тестовое сообщение одного шаблона для проверки списка участников"
    ids = []
    for k in range(130):
        ev = sms(text, f"7705{k:07d}")
        ids.append(ev.id)
        det.inspect(ev, 1000.0 + k)
    cid = det.cluster_of(text)
    assert cid is not None
    assert det.members(cid) == ids[-50:]
    assert det.members("nope") == []
    view = det.campaign(cid)
    assert view is not None and view.messages == 130


def test_window_expiry_and_lru_cap_bound_memory() -> None:
    lim = CampaignLimits(max_clusters=100, max_texts=300, max_labelled=10)
    det = CampaignDetector(lim)
    rng = random.Random(6)
    words = ["мама", "папа", "хлеб", "молоко", "завтра", "вечером", "работа", "дом", "кино"]
    for k in range(2000):
        text = " ".join(rng.choice(words) for _ in range(12)) + f" номер {k}"
        det.inspect(sms(text + " " + "".join(rng.choices("абвгдеж", k=8))), 1000.0 + k)
    t = det.tracked
    assert t["clusters"] <= 100 and t["texts"] <= 300
    assert t["band_keys"] <= 100 * 8 * lim.max_variants
    for _ in range(30):
        text = "".join(rng.choices("абвгдежзиклмнопрстуфх ", k=60))  # unrelated texts
        det.label(text, "complaint", 0.0)
    assert det.tracked["labelled"] <= 10
    # nothing for a window: every unlabelled cluster expires as traffic goes on
    for k in range(120):
        det.inspect(sms("Новый поток сообщений после паузы " + "ё" * k), 5000.0 + k)
    assert det.tracked["clusters"] <= 100
    old = [c for c in det._live.values() if c.last_seen < 5000.0]
    assert old == []
    # labelled clusters outlive the window, not label_ttl
    assert det.tracked["labelled"] == 10
    for k in range(64):  # labelled clusters are swept every 64 messages
        det.inspect(sms(f"Ещё одно сообщение гораздо позже всех остальных {k}"), 8 * 86400.0 + k)
    assert det.tracked["labelled"] < 10


def test_senders_past_the_cap_are_estimated() -> None:
    det = CampaignDetector(CampaignLimits(distinct_cap=64))
    text = template()
    for k in range(2000):
        det.inspect(sms(text, f"7705{k:07d}", f"7707{k:07d}"), 1000.0 + k * 0.1)
    cid = det.cluster_of(text)
    assert cid is not None
    view = det.campaign(cid)
    assert view is not None and view.approximate
    assert 1500 <= view.senders <= 2500 and 1500 <= view.recipients <= 2500


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="min_senders"):
        CampaignLimits(min_senders=0)
    with pytest.raises(ValueError, match="similarity"):
        CampaignLimits(similarity=1.5)
    with pytest.raises(ValueError, match="distinct_cap"):
        CampaignLimits(distinct_cap=10)


# --------------------------------------------------------------------------------------------
# Real texts


def test_real_texts_are_not_merged() -> None:
    texts = read_real_corpus([CORPUS / "real-train.csv", CORPUS / "real-heldout.csv"])
    assert len(texts) > 1500
    q = merge_quality(texts)
    assert q.merged_pairs["<0.3"] == 0, q.examples
    assert q.false_merges <= 60, q.report("real")  # 0.3-0.5: nearly all one template family
    # sent at once by distinct people, none of them is a campaign
    det = CampaignDetector()
    for k, text in enumerate(texts):
        assert not det.inspect(sms(text, f"7705{k:07d}", f"7707{k:07d}"), 1000.0 + k * 0.01)


@pytest.mark.skipif(not UCI.exists(), reason="shared UCI SMS spam collection not present")
def test_uci_texts_are_not_merged() -> None:
    q = merge_quality(read_uci())
    assert q.merged_pairs["<0.3"] == 0, q.examples
    assert q.false_merges <= 60, q.report("uci")


# --------------------------------------------------------------------------------------------
# Snapshot


def _populated() -> tuple[CampaignDetector, str, str]:
    det = CampaignDetector()
    farm(det, 60)
    camp = det.cluster_of(smishing(random.Random(1)))
    text = "Ваш номер будет отключён, подтвердите данные на mts-kz.top/id"
    labelled = det.label(text, "complaint", 1100.0)
    assert camp is not None and labelled is not None
    det.take_events()
    return det, camp, labelled


def test_snapshot_round_trip() -> None:
    det, camp, labelled = _populated()
    data = det.snapshot()
    assert isinstance(data, bytes)
    fresh = CampaignDetector()
    assert fresh.restore(data, 1130.0) == det.tracked["clusters"] + det.tracked["labelled"]
    assert fresh.cluster_of(smishing(random.Random(77))) == camp
    assert fresh.members(camp) == det.members(camp)
    before, after = det.campaign(camp), fresh.campaign(camp)
    assert before == after
    ids = rule_ids(fresh.inspect(sms(smishing(random.Random(78))), 1131.0))
    assert ids == ["campaign.simfarm"]
    variant = "Ваш номер будет отключён, подтвердите данные на mts-kz.top/zz9"
    assert rule_ids(fresh.inspect(sms(variant), 1132.0)) == ["campaign.labelled.complaint"]
    assert fresh.take_events() == []  # nothing new was recognised or labelled
    # restored much later: the campaign expired, the labelled cluster lives on
    late = CampaignDetector()
    assert late.restore(data, 1100.0 + 86400.0) == 1
    assert late.cluster_of(variant) == labelled


@pytest.mark.parametrize(
    "mangle",
    [
        lambda d: b"",
        lambda d: b"not a snapshot",
        lambda d: d[: len(d) // 2],
        lambda d: d[:20] + bytes([d[20] ^ 0xFF]) + d[21:],
        lambda d: d[:7] + zlib.compress(b"{not json"),
        lambda d: d[:7] + zlib.compress(b'{"format": "fraudgate.campaigns", "version": 99}'),
        lambda d: d[:7] + zlib.compress(json.dumps([1, 2]).encode()),
        lambda d: _edit(d, lambda c: c.update(reps=base64.b64encode(b"abc").decode())),
        lambda d: _edit(d, lambda c: c.update(n="many")),
        lambda d: _edit(d, lambda c: c.update(label="spam")),
        lambda d: _edit(d, lambda c: c.update(routes=["smoke-signal"])),
        lambda d: _edit(d, lambda c: c.update(recent=[1, 2])),
        lambda d: _edit(d, lambda c: c["snd"].update(hll="AAAA")),
        lambda d: _edit(d, lambda c: c.pop("id")),
    ],
)
def test_corrupt_snapshot_raises_and_leaves_the_detector_empty(mangle: object) -> None:
    det, _, _ = _populated()
    data = det.snapshot()
    assert callable(mangle)
    target, _, _ = _populated()
    with pytest.raises(SnapshotError):
        target.restore(mangle(data), 1130.0)
    assert target.tracked == {"clusters": 0, "labelled": 0, "texts": 0, "band_keys": 0}
    assert not target.inspect(sms(smishing(random.Random(1))), 1131.0)


def _edit(data: bytes, change: object) -> bytes:
    doc = json.loads(zlib.decompress(data[7:]))
    assert callable(change)
    change(doc["clusters"][0])
    return data[:7] + zlib.compress(json.dumps(doc).encode())


# --------------------------------------------------------------------------------------------
# Robustness


BAD = [
    "",
    " ",
    "😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀",
    "Ш" * 1500,
    ("Длинное сообщение из десяти частей со ссылкой https://x.top/" + "а" * 40 + " ") * 15,
    "Kaspi kаспи ҚАЗАҚСТАН καλημέρα مرحبا 你好 שלום 1234567890 https://пример.рф/путь",
    "\ud800\udfff\ud800 одинокие суррогаты \udc00 в тексте сообщения номер 5",
    "\x00\x01\x02\uffff\ufffe\u202e\u200b нулевые и невидимые символы в тексте сообщения",
    "x" * 19,
]


@pytest.mark.parametrize("text", BAD)
def test_bad_input_never_raises(text: str) -> None:
    det = CampaignDetector()
    for k in range(30):
        det.inspect(sms(text, f"7705{k:07d}", f"7707{k:07d}"), 1000.0 + k)
    det.cluster_of(text)
    det.label(text, "complaint", 1100.0)
    det.inspect(sms(text), 1101.0)
    det.learn_blocked(sms(text), _verdict(Reason("content", "c", 0.9, "x")), 1102.0)
    det.take_events()
    mask_sample(text)
    CampaignDetector().restore(det.snapshot(), 1103.0)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_any_text_never_raises(text: str) -> None:
    det = CampaignDetector()
    det.inspect(sms(text), 0.0)
    det.cluster_of(text)
    det.label(text, "blocked", 1.0)
    mask_sample(text)


def test_sample_has_no_personal_data() -> None:
    s = mask_sample("Уважаемый Иван Петров, позвоните +7 701 234 56 67 или пишите ivan@mail.kz, "
                    "сумма 50 000 тг https://bank-kz.top/u/ivan?id=77011234567")  # fmt: skip
    assert "Иван" not in s and "ivan" not in s and "234" not in s and "50 000" not in s
    assert "77***67" in s and "bank-kz.top" in s
