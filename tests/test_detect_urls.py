"""Links: extraction (plain, bare, obfuscated, homoglyph, punycode, IP), brand look-alikes,
shorteners, suspicious TLDs, the campaign memory, reload and robustness."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.config_check import ConfigError
from gateway.detect.urls import FoundUrl, UrlDetector, extract_urls, registrable_domain
from gateway.domain import Decision, Reason, SmsEvent, Thresholds, combine

RULES = Path(__file__).resolve().parent.parent / "config" / "rules"


@pytest.fixture(scope="module")
def det() -> UrlDetector:
    return UrlDetector.from_file(RULES / "brands.toml")


def one(text: str) -> FoundUrl:
    found = extract_urls(text)
    assert len(found) == 1, found
    u = found[0]
    assert text[u.span.start : u.span.end] == u.span.text
    return u


def reasons(det: UrlDetector, text: str, now: float = 0.0) -> dict[str, Reason]:
    return {r.rule_id: r for r in det.inspect(SmsEvent("a", "b", text), now)}


# --------------------------------------------------------------------------------------------
# Extraction


@pytest.mark.parametrize(
    ("text", "url", "domain", "registrable", "span"),
    [
        ("Перейдите: https://kaspi-bank.kz-secure.com/unblock.", "https://kaspi-bank.kz-secure.com/unblock",
         "kaspi-bank.kz-secure.com", "kz-secure.com", "https://kaspi-bank.kz-secure.com/unblock"),
        ("http://kaspi.kz-pay.info/card", "http://kaspi.kz-pay.info/card", "kaspi.kz-pay.info",
         "kz-pay.info", "http://kaspi.kz-pay.info/card"),
        ("заходи www.example.kz", "www.example.kz", "www.example.kz", "example.kz",
         "www.example.kz"),
        ("тут example.top/x, смотри", "example.top/x", "example.top", "example.top",
         "example.top/x"),
        ("(см. kaspi.kz)", "kaspi.kz", "kaspi.kz", "kaspi.kz", "kaspi.kz"),
        ("egov.kz-тен кіріңіз", "egov.kz", "egov.kz", "egov.kz", "egov.kz"),
        ("HTTPS://Kaspi.KZ/Pay", "https://kaspi.kz/Pay", "kaspi.kz", "kaspi.kz", "HTTPS://Kaspi.KZ/Pay"),
        ("http://192.168.1.10:8080/login", "http://192.168.1.10:8080/login", "192.168.1.10",
         "192.168.1.10", "http://192.168.1.10:8080/login"),
        ("https://kaspi.kz@evil.top/x", "https://evil.top/x", "evil.top", "evil.top",
         "https://kaspi.kz@evil.top/x"),
        ("a.b.gov.kz", "a.b.gov.kz", "a.b.gov.kz", "b.gov.kz", "a.b.gov.kz"),
    ],
)  # fmt: skip
def test_extract(text: str, url: str, domain: str, registrable: str, span: str) -> None:
    u = one(text)
    assert (u.url, u.domain, u.registrable, u.span.text) == (url, domain, registrable, span)


@pytest.mark.parametrize(
    ("text", "domain", "span"),
    [
        ("kaspi[.]kz/pay", "kaspi.kz", "kaspi[.]kz/pay"),
        ("kaspi(.)kz", "kaspi.kz", "kaspi(.)kz"),
        ("kaspi{.}kz", "kaspi.kz", "kaspi{.}kz"),
        ("зайди на kaspi . kz", "kaspi.kz", "kaspi . kz"),
        ("kaspi dot kz", "kaspi.kz", "kaspi dot kz"),
        ("kaspi [dot] kz", "kaspi.kz", "kaspi [dot] kz"),
        ("hxxps://evil(.)top/x", "evil.top", "hxxps://evil(.)top/x"),
        ("hxxp://evil.top", "evil.top", "hxxp://evil.top"),
        ("kaspi．kz", "kaspi.kz", "kaspi．kz"),
    ],
)
def test_extract_obfuscated(text: str, domain: str, span: str) -> None:
    u = one(text)
    assert u.obfuscated and u.domain == domain and u.span.text == span


def test_extract_homoglyph_and_punycode() -> None:
    u = one("Вход: kаspi.kz/login")  # Cyrillic а
    assert u.homoglyph and u.mixed_script and u.idn
    assert u.look == "kaspi.kz" and u.domain.startswith("xn--") and u.domain.endswith(".kz")
    p = one("xn--80ak6aa92e.com")  # "аррӏе" in Cyrillic
    assert p.idn and p.homoglyph and p.look == "apple.com" and p.unicode_host == "аррӏе.com"
    idn = one("мама.рф")
    assert idn.idn and not idn.homoglyph and idn.domain == "xn--80aa8ab.xn--p1ai"


@pytest.mark.parametrize(
    "text",
    [
        "т.е. всё нормально",
        "Встреча 12.05.2024 в 10.30",
        "Код 1234. Никому не сообщайте",
        "Я дома . Me too",
        "версия 1.2.3.4 вышла",
        "Привет.Как дела",
        "Купи хлеб и молоко, пожалуйста",
    ],
)
def test_no_link_in_prose(text: str) -> None:
    assert extract_urls(text) == []


def test_several_links() -> None:
    found = extract_urls("a.kaspi.kz, b.top и https://bit.ly/x")
    assert [u.domain for u in found] == ["a.kaspi.kz", "b.top", "bit.ly"]


def test_registrable_domain() -> None:
    assert registrable_domain("pay.kaspi.kz") == "kaspi.kz"
    assert registrable_domain("kaspi.kz.verify-id.top") == "verify-id.top"
    assert registrable_domain("x.y.gov.kz") == "y.gov.kz"


# --------------------------------------------------------------------------------------------
# Scoring


@pytest.mark.parametrize(
    ("text", "rule_id"),
    [
        ("https://kaspi-bank.kz-secure.com/unblock", "url.lookalike.kaspi"),
        ("http://kaspi.kz.verify-id.top/x", "url.lookalike.kaspi"),
        ("https://halyk-bonus.top", "url.lookalike.halyk"),
        ("https://homebank-halyk.site/bonus", "url.lookalike.halyk"),
        ("https://egov-kz.online/1414", "url.lookalike.egov"),
        ("https://post-kz.delivery/track", "url.lookalike.kazpost"),
        ("https://secure-kaspi.com/verify", "url.lookalike.kaspi"),
        ("https://beeline-kz.online", "url.lookalike.beeline"),
        ("kaspl.kz/secure", "url.homoglyph.kaspi"),
        ("halykbаnk.kz", "url.homoglyph.halyk"),  # Cyrillic а
        ("https://kаspi.kz/login", "url.homoglyph.kaspi"),
        ("https://xn--kspi-53d.kz/login", "url.homoglyph.kaspi"),  # punycode of kаspi.kz
        ("halyckbank.kz", "url.typo.halyk"),
        ("https://kasspi.kz", "url.typo.kaspi"),
        ("https://nationalbnk.kz", "url.typo.nationalbank"),
        ("kaspi.com", "url.other_tld.kaspi"),
        ("bit.ly/3abc", "url.shortener"),
        ("https://clck.ru/abc", "url.shortener"),
        ("http://10.0.0.1/x", "url.ip"),
        ("example.xyz/a", "url.suspicious_tld"),
        ("hxxps://evil(.)ru/a", "url.obfuscated"),
        ("https://kaspi.kz@evil.ru/a", "url.userinfo"),
        ("https://xn--80ak6aa92e.com", "url.confusable"),
        ("https://shop.kz-pay.info", "url.fake_kz"),
    ],
)
def test_rules(det: UrlDetector, text: str, rule_id: str) -> None:
    found = reasons(det, text)
    assert rule_id in found, sorted(found)
    r = found[rule_id]
    assert r.detector == "url" and 0 < r.score <= 1 and r.description
    assert all(text[s.start : s.end] == s.text for s in r.spans) and r.spans


def test_scores_and_policy(det: UrlDetector) -> None:
    strong = reasons(det, "https://kaspi-bank.kz-secure.com/unblock")
    assert strong["url.lookalike.kaspi"].score >= 0.85
    assert combine(list(strong.values()), Thresholds()).decision is Decision.BLOCK
    homo = reasons(det, "kаspi.kz")["url.homoglyph.kaspi"]
    assert homo.block and homo.score >= 0.9
    weak = reasons(det, "example.xyz/a")
    assert combine(list(weak.values()), Thresholds()).score < 0.5
    assert reasons(det, "bit.ly/x")["url.shortener"].score < 0.5


@pytest.mark.parametrize(
    "text",
    [
        "https://kaspi.kz/pay",
        "Оплата: kaspi.kz",
        "https://www.egov.kz/cms/ru",
        "https://pay.kaspi.kz/x?y=1",
        "https://homebank.kz",
        "https://halykbank.kz/ru",
        "https://post.kz/tracking",
        "https://primeminister.gov.kz",
        "http://beeline.kz",
        "https://olx.kz/d/obyavlenie/x",
        "kaspi[.]kz",
        "Arbuz.kz-ға барамын",
        "Meeting: https://docs.google.com/document/d/abc",
        "zoom.us/j/123",
        "Купи хлеб",
    ],
)
def test_real_domains_are_clean(det: UrlDetector, text: str) -> None:
    assert reasons(det, text) == {}


def test_one_reason_per_rule_with_all_spans(det: UrlDetector) -> None:
    text = "https://halyk-bonus.top или https://halyk-prize.top"
    r = reasons(det, text)["url.lookalike.halyk"]
    assert [s.text for s in r.spans] == ["https://halyk-bonus.top", "https://halyk-prize.top"]


# --------------------------------------------------------------------------------------------
# Campaign memory


def test_campaign_memory(det: UrlDetector) -> None:
    d = UrlDetector(det.rules)
    text = "Посылка: https://parcel-track.info/a1"
    assert "url.campaign" not in reasons(d, text, 100.0)
    assert d.remember_campaign_urls("Оплатите https://sub.parcel-track.info/pay", 100.0) == [
        "parcel-track.info"
    ]
    r = reasons(d, text, 200.0)
    assert r["url.campaign"].score >= 0.8
    # expires after the TTL
    assert "url.campaign" not in reasons(d, text, 100.0 + d.rules.campaign_ttl + 1)
    assert d.campaign_domains() == []
    # never the brands' real domains, nor shorteners
    assert not d.remember_campaign("https://kaspi.kz/x", 0.0)
    assert not d.remember_campaign("bit.ly", 0.0)
    assert d.remember_campaign("HTTPS://User@Evil.Top:443/path", 0.0)
    assert d.campaign_domains() == ["evil.top"]


def test_campaign_memory_is_bounded(det: UrlDetector) -> None:
    from dataclasses import replace

    d = UrlDetector(replace(det.rules, campaign_max=3))
    for i in range(10):
        d.remember_campaign(f"evil{i}.top", float(i))
    assert d.campaign_domains() == ["evil7.top", "evil8.top", "evil9.top"]
    d.remember_campaign("evil7.top", 20.0)  # refreshed: now the newest
    d.remember_campaign("evil10.top", 21.0)
    assert d.campaign_domains() == ["evil9.top", "evil7.top", "evil10.top"]


# --------------------------------------------------------------------------------------------
# Rule file


def test_reload(tmp_path: Path) -> None:
    path = tmp_path / "brands.toml"
    shutil.copy(RULES / "brands.toml", path)
    d = UrlDetector.from_file(path)
    d.remember_campaign("evil.top", 0.0)
    assert "url.lookalike.acme" not in reasons(d, "https://acme-bonus.top")
    path.write_text(
        path.read_text(encoding="utf-8")
        + '\n[[brand]]\nid = "acme"\nname = "Acme"\ndomains = ["acme.kz"]\ntokens = ["acme"]\n',
        encoding="utf-8",
    )
    d.reload()
    assert "url.lookalike.acme" in reasons(d, "https://acme-bonus.top")
    assert reasons(d, "https://acme.kz") == {}
    assert d.campaign_domains() == ["evil.top"]  # memory kept across reloads
    good = path.read_text(encoding="utf-8")
    for bad, key in (
        (good.replace("lookalike = 0.9 ", "lookalike = 9.0 ", 1),
         r"scores\.lookalike: must be 0\.\.1"),
        (good.replace('block = ["homoglyph"]', 'block = ["everything"]', 1), r"block\[0\]"),
        (good.replace('id = "kaspi"', 'id = "Kaspi Bank"', 1), r"brand\[0\]\.id"),
        (good.replace('tokens = ["kaspi"]', 'tokens = ["kz"]', 1), r"brand\[0\]\.tokens\[0\]"),
        (good.replace('domains = ["kaspi.kz"]', "domains = []", 1), r"brand\[0\]\.domains"),
        (good.replace("[campaigns]", "[campaigns]\nsize = 3", 1), r"campaigns\.size: unknown key"),
    ):  # fmt: skip
        path.write_text(bad, encoding="utf-8")
        with pytest.raises(ConfigError, match=key):
            d.reload()
        assert "url.lookalike.acme" in reasons(d, "https://acme-bonus.top")


# --------------------------------------------------------------------------------------------
# Robustness

_DET = UrlDetector.from_file(RULES / "brands.toml")
_URLISH = st.lists(
    st.sampled_from(["kaspi", ".", "kz", "[.]", " . ", "xn--", "http", "://", "hxxps", "/", "@",
                     "-", "а", "1", "top", " dot ", "..", "xn--80ak6aa92e", ":", "99999", "．",
                     "ʼ", "\u200b", "İ", "中", "."]),
    max_size=25,
).map("".join)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=300), _URLISH))
def test_never_raises(text: str) -> None:
    for u in extract_urls(text):
        assert text[u.span.start : u.span.end] == u.span.text
    for r in _DET.inspect(SmsEvent("a", "b", text), 0.0):
        assert 0 <= r.score <= 1
    _DET.remember_campaign(text, 0.0)
