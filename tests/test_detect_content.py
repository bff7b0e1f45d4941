"""The content detector: themes in Russian, Kazakh and English, obfuscation, spans in the
original text, OTP notices and everyday texts staying clean, reload, robustness; and the three
rule detectors together over the demo scenario."""

from __future__ import annotations

import os
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.config_check import ConfigError
from gateway.detect.content import ContentDetector, has_phone, looks_like_otp
from gateway.detect.rules import compile_pattern, normalise, required_literals, skeleton
from gateway.domain import Decision, Detector, Reason, Route, SmsEvent, Thresholds, combine

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "config" / "rules"


@pytest.fixture(scope="module")
def content() -> ContentDetector:
    return ContentDetector.from_file(RULES / "content.toml")


def inspect(det: ContentDetector, text: str) -> dict[str, Reason]:
    return {r.rule_id: r for r in det.inspect(SmsEvent("77011234567", "77021234567", text), 0.0)}


def score(det: ContentDetector, text: str) -> float:
    return combine(list(inspect(det, text).values()), Thresholds()).score


# --------------------------------------------------------------------------------------------
# Normalisation


def test_normalise_folds_case_homoglyphs_and_kazakh_letters() -> None:
    # Latin "a" in a Cyrillic word, Cyrillic "а" in a Latin one, ё, Kazakh letters typed plain
    assert normalise("Kаspi").text == normalise("KASPI").text == normalise("kaspi").text
    assert normalise("кaртa").text == normalise("КАРТА").text
    assert normalise("счёт").text == normalise("счет").text
    assert normalise("айтыңыз").text == normalise("айтыныз").text
    assert normalise("c0de").text == normalise("code").text
    assert normalise("к0д").text == normalise("код").text


def test_normalise_keeps_digits_of_codes_and_amounts() -> None:
    n = normalise("Код 1234, сумма 50 000 тг")
    assert "1234" in n.text and "50 000" in n.text


def test_normalise_joins_spelled_out_letters_and_maps_back() -> None:
    text = "Назовите  к о д\u200b оператору"
    n = normalise(text)
    assert n.index is not None
    m = re.search(normalise("код").text, n.text)
    assert m is not None
    span = n.span(m.start(), m.end())
    assert span.text == "к о д"
    assert text[span.start : span.end] == "к о д"


def test_skeleton_collapses_lookalikes() -> None:
    assert skeleton("KASPl") == skeleton("Kaspi") == skeleton("kаspi") == skeleton("KA5PI")
    assert skeleton("Halyk Bank") == skeleton("HalykBank") == skeleton("halyk-bank")


def test_compile_pattern_refuses_what_folding_would_break() -> None:
    with pytest.raises(ConfigError, match="lower case"):
        compile_pattern("Code", "k")
    assert compile_pattern("Код", "k").search(normalise("мой КОД").text)  # non-Latin: folded
    with pytest.raises(ConfigError, match="ranges"):
        compile_pattern("[а-я]+", "k")
    with pytest.raises(ConfigError, match="empty"):
        compile_pattern("x?", "k")
    with pytest.raises(ConfigError, match="valid regular"):
        compile_pattern("(код", "k")


def test_required_literals() -> None:
    lits = required_literals(compile_pattern(r"(?:назовите|скажите)\s+код", "k"))
    assert lits == frozenset({normalise("назовите").text, normalise("скажите").text})
    assert required_literals(compile_pattern(r"\d{4}", "k")) is None


# --------------------------------------------------------------------------------------------
# Themes

FRAUD = [
    # (text, rule id expected, minimum combined score from content alone)
    ("Назовите код из СМС сотруднику банка",
     "content.ru.code_request", 0.8),
    ("Продиктуйте SMS-код курьеру для подтверждения заказа",
     "content.ru.code_request", 0.8),
    ("Для отмены перевода назовите код 4821 оператору",
     "content.ru.code_to_person", 0.9),
    ("Сіздің картаңыз бұғатталды, кодты айтыңыз",
     "content.kk.code_request", 0.8),
    ("1414 нөмірінен SMS-код келеді. Кодты маманға хабарлаңыз",
     "content.kk.code_request", 0.9),
    ("Please tell our agent the code you receive by SMS",
     "content.en.code_request", 0.7),
    ("Переведите средства на безопасный счёт",
     "content.ru.safe_account", 0.9),
    ("Қаражатыңызды қауіпсіз шотқа аударыңыз",
     "content.kk.safe_account", 0.9),
    ("Move your money to a safe account now",
     "content.en.safe_account", 0.9),
    ("На вас оформили кредит. Для отмены позвоните +7 705 123 45 67",
     "content.ru.credit_in_name", 0.75),
    ("Сіздің атыңызға 2 000 000 ₸ несие рәсімделуде",
     "content.kk.credit_in_name", 0.55),
    ("Полиция: не кладите трубку, с вами свяжется следователь",
     "content.ru.call_pressure", 0.7),
    ("Kazpost: сізге сәлемдеме келді. Жеткізуді растаңыз: https://post-kz.delivery",
     "content.kk.parcel_link", 0.8),
    ("Ваша посылка задержана на таможне. Оплатите пошлину: http://parcel-kz.top/pay",
     "content.ru.parcel_link", 0.8),
    ("Your parcel is on hold, pay the redelivery fee: https://track-parcel.top",
     "content.en.parcel_link", 0.8),
    ("Курьер: вам доставка цветов. Продиктуйте код из SMS",
     "content.ru.courier_gift", 0.8),
    ("Поздравляем! Ваш номер выиграл 500 000 тг. Получите приз: https://promo-win.top",
     "content.ru.prize_contact", 0.8),
    ("Құттықтаймыз! Сіз ұттыңыз! Жүлдені алу: https://utys-kz.site",
     "content.kk.prize_contact", 0.8),
    ("Congratulations, you have won! Claim your prize: http://win-now.xyz",
     "content.en.prize_contact", 0.8),
    ("Halyk: сізге 25 000 ₸ бонус есептелді! Алу үшін: https://bonus-alu.top",
     "content.kk.bonus_link", 0.7),
    ("Пассивный доход от 300 000 тг в месяц, пишите в WhatsApp +7 747 111 22 33",
     "content.ru.investment_contact", 0.75),
    ("Guaranteed daily profit 3%! Invest from $100: https://t.ly/abc",
     "content.en.investment_contact", 0.75),
    ("eGov: ваша ЭЦП будет отозвана. Подтвердите личность: https://egov-kz.online",
     "content.ru.egov_docs_link", 0.8),
    ("Вам поступил перевод 50 000 тг. Для зачисления подтвердите данные карты: http://perevod.top",
     "content.ru.card_data", 0.8),
    ("Мама, я попал в аварию, срочно нужны деньги, переведи на этот номер 8 776 123 45 67",
     "content.ru.relative_emergency_contact", 0.8),
    ("Ваша карта заблокирована. Позвоните в службу безопасности: +7 701 234 56 78",
     "content.ru.card_blocked_contact", 0.8),
    ("Your card has been suspended. Verify your account: https://secure-verify.top",
     "content.en.card_blocked_contact", 0.8),
]  # fmt: skip


@pytest.mark.parametrize(("text", "rule_id", "minimum"), FRAUD)
def test_fraud_themes(content: ContentDetector, text: str, rule_id: str, minimum: float) -> None:
    found = inspect(content, text)
    assert rule_id in found, sorted(found)
    r = found[rule_id]
    assert r.detector == "content" and 0.0 < r.score <= 1.0 and r.description
    for s in r.spans:  # spans point into the original text
        assert text[s.start : s.end] == s.text and s.text
    assert score(content, text) >= minimum


CLEAN = [
    "Код для входа: 4821. Никому не сообщайте его",
    "Kaspi.kz: код подтверждения 1234. Никому не сообщайте, даже сотрудникам банка",
    "Ваш код 123456. Сотрудники банка никогда не просят назвать код",
    "Halyk Homebank: ваш код 552211",
    "Код для входа в eGov mobile: 552211",
    "Растау коды: 1234. Ешкімге айтпаңыз",
    "Your Glovo code: 1234",
    "Your verification code is 482913. Do not share this code with anyone.",
    "Оплата 5 000 тг в Magnum. Подробнее: https://kaspi.kz/pay",
    "Справка готова: https://egov.kz/cms/ru/services",
    "Вход в Kaspi.kz с нового устройства. Если это не вы, позвоните 7111",
    "Ваша посылка прибыла в пункт выдачи. https://post.kz/tracking",
    "Мошенники просят перевести деньги на «безопасный счёт». Безопасных счетов не существует!",
    "Алаяқтар қауіпсіз шотқа ақша аударуды сұрайды. Ондай шот жоқ!",
    "Мама, я задержусь, буду в 8",
    "Купи хлеб и молоко, пожалуйста",
    "Скинул тебе 5 000 тг на Kaspi, проверь",
    "Сәлем! Кешке кездесеміз бе?",
    "Kaspi-ге 5000 теңге жібердім, қарап жіберші",
    "Running late, be there in 10",
    "Landed in Almaty, taking a taxi now",
    "Водитель приедет через 4 мин: белая Toyota Camry, 123 ABC 02",
    "Курьер уже в пути, заказ №12345678",
    "Сіздің тапсырысыңыз №12345678 жеткізілді. Рахмет!",
    "Баланс: 1 200 тг. Пополнить можно в приложении",
    "Скажи маме, что я задержусь",
    "Передай код от домофона соседу",
    "Meeting at 10.30, see https://docs.google.com/document/d/abc",
    "Уважаемый клиент! Ваш кредит одобрен. Подробности в приложении",
]


@pytest.mark.parametrize("text", CLEAN)
def test_clean_messages_give_no_reason(content: ContentDetector, text: str) -> None:
    assert inspect(content, text) == {}


NOTICES = [  # a bank's own notices: may give weak findings, never a flag from content alone
    "Ваша карта заблокирована по вашему запросу. Kaspi.kz",
    "Вам начислен кэшбэк 1 250 тг за покупки в мае",
    "Сізге сәлемдеме келді. Толығырақ: https://post.kz",
    "Спасибо за заявку! Наш специалист свяжется с вами в ближайшее время",
    "Полиция перекрыла Абая, объезжай",
    "Инвестиции в облигации: доходность 14% годовых",
    "Мам, я по ошибке скинул тебе 5000, верни пожалуйста",
    "Розыгрыш призов среди покупателей! Подробности: https://magnum.kz/promo",
    "Оплата прошла успешно. Чек об оплате: https://ofd1.kz/t?i=123",
    "Вход в Homebank с нового устройства. Если это не вы, позвоните +7 727 259 07 77",
    "Скидки до 50% в Magnum! Только до конца дня: magnum.kz/sale",
    "Срок действия удостоверения истекает 01.07. Запишитесь в ЦОН через egov.kz",
    "Ваша посылка RB123456789CN задержана на таможне. Подробнее: https://post.kz/track",
    "Привет, это мой новый номер, сохрани",
]


@pytest.mark.parametrize("text", NOTICES)
def test_notices_stay_below_flag(content: ContentDetector, text: str) -> None:
    assert score(content, text) < 0.5


def test_otp_alone_low_but_code_request_with_contact_high(content: ContentDetector) -> None:
    assert score(content, "Код для входа: 1234. Никому не сообщайте") < 0.5
    assert score(content, "Назовите код оператору по номеру +7 701 234 56 78") >= 0.8


def test_requires_link_or_phone(content: ContentDetector) -> None:
    base = "Ваша карта заблокирована."
    assert "content.ru.card_blocked_contact" not in inspect(content, base)
    assert "content.ru.card_blocked_contact" in inspect(content, base + " Звоните 8 701 234 56 78")
    assert "content.ru.card_blocked_contact" in inspect(content, base + " https://unblock.top/x")
    # a link to the bank's real domain is not "a link" for these rules
    assert "content.ru.card_blocked_contact" not in inspect(content, base + " https://kaspi.kz")


def test_obfuscated_wording_still_matches(content: ContentDetector) -> None:
    for text in (
        "Назовите к о д из СМС оператору",
        "Назовите К-О-Д оператору",
        "Назовите к\u200bо\u200bд оператору",
        "Назoвитe кoд oпeратору",  # Latin o and e inside Russian words
        "Переведите деньги на безопасный  счёт",
        "Please tell me the c0de from the SMS",
    ):
        found = inspect(content, text)
        kinds = ("code_request", "code_to_person", "safe_account")
        assert any(rid.endswith(kinds) for rid in found), text


def test_spans_point_at_the_original_text(content: ContentDetector) -> None:
    text = "Срочно! Назовите  к о д  оператору"
    r = inspect(content, text)["content.ru.code_request"]
    assert r.spans and all(text[s.start : s.end] == s.text for s in r.spans)
    assert "Назовите" in r.spans[0].text and "к о д" in r.spans[0].text


def test_safe_account_blocks(content: ContentDetector) -> None:
    r = inspect(content, "Переведите деньги на безопасный счёт")["content.ru.safe_account"]
    assert r.block
    v = combine([r], Thresholds())
    assert v.decision is Decision.BLOCK


def test_helpers() -> None:
    assert has_phone("Звоните +7 701 234 56 78") and has_phone("8(701)234-56-78")
    assert has_phone("call +44 20 7946 0958")
    assert not has_phone("заказ №12345678, сумма 500 000 тг")
    assert looks_like_otp("Код для входа: 1234. Никому не сообщайте")
    assert looks_like_otp("Your Glovo code: 1234") and looks_like_otp("Растау коды: 1234")
    assert not looks_like_otp("Купи хлеб")


# --------------------------------------------------------------------------------------------
# Reload


@pytest.fixture
def rule_dir(tmp_path: Path) -> Path:
    shutil.copy(RULES / "content.toml", tmp_path / "content.toml")
    shutil.copy(RULES / "brands.toml", tmp_path / "brands.toml")
    return tmp_path


EXTRA_RULE = """
[[rule]]
id = "content.en.test_marker"
lang = "en"
theme = "test"
score = 0.6
description = "test rule"
patterns = ['zebra\\s+crossing']
"""


def _touch_later(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_reload_swaps_rules(rule_dir: Path) -> None:
    det = ContentDetector.from_file(rule_dir / "content.toml")
    assert det.maybe_reload() is False
    assert inspect(det, "zebra crossing ahead") == {}
    path = rule_dir / "content.toml"
    path.write_text(path.read_text(encoding="utf-8") + EXTRA_RULE, encoding="utf-8")
    _touch_later(path)
    assert det.maybe_reload() is True
    assert "content.en.test_marker" in inspect(det, "Zebra  crossing ahead")
    assert det.maybe_reload() is False


def test_broken_reload_keeps_old_rules_and_names_the_key(
    rule_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    det = ContentDetector.from_file(rule_dir / "content.toml")
    text = "Назовите код оператору"
    before = inspect(det, text)
    assert before
    path = rule_dir / "content.toml"
    good = path.read_text(encoding="utf-8")
    broken = good.replace("'(?:назовите|", "'(?:назовите|(", 1)  # unbalanced parenthesis
    path.write_text(broken, encoding="utf-8")
    _touch_later(path)
    with pytest.raises(ConfigError, match=r"rule\[0\]\.patterns\[0\]: not a valid regular"):
        det.maybe_reload()
    assert "rule file not reloaded" in caplog.text
    assert inspect(det, text) == before  # old rules still in use
    assert det.maybe_reload() is False  # not retried until the file changes again
    for bad, key in (
        (good.replace('score = 0.75', 'score = 1.75', 1), r"rule\[0\]\.score: must be 0\.\.1"),
        (good.replace('lang = "ru"', 'lang = "de"', 1), r"rule\[0\]\.lang"),
        (good.replace('theme = "code_request"', 'theme = "code_request"\ncolour = 1', 1),
         r"rule\[0\]\.colour: unknown key"),
        (good.replace('requires = ["link", "phone"]', 'requires = ["email"]', 1), r"requires\[0\]"),
        (good.replace('patterns_from = "content.ru.card_blocked"', 'patterns_from = "x"', 1),
         r"patterns_from: no earlier rule"),
        ("not [toml", "not valid TOML"),
    ):  # fmt: skip
        path.write_text(bad, encoding="utf-8")
        with pytest.raises(ConfigError, match=key):
            det.reload()
        assert inspect(det, text) == before


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"content\.toml"):
        ContentDetector.from_file(tmp_path / "content.toml")


# --------------------------------------------------------------------------------------------
# Robustness


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_inspect_never_raises(text: str) -> None:
    for r in _DET.inspect(SmsEvent("x", "y", text), 0.0):
        assert 0.0 <= r.score <= 1.0
        for s in r.spans:
            assert 0 <= s.start <= s.end <= len(text) and text[s.start : s.end] == s.text


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["назовите", "код", " ", "к", "о", "д", ".", "-", "\u200b", "  ",
                                 "kaspi", "0", "безопасный", "счёт", "\n", "İ", "ß", "😀"]),
                max_size=30))  # fmt: skip
def test_inspect_never_raises_on_obfuscation_soup(parts: list[str]) -> None:
    text = "".join(parts)
    for r in _DET.inspect(SmsEvent("x", "y", text), 0.0):
        for s in r.spans:
            assert text[s.start : s.end] == s.text


_DET = ContentDetector.from_file(RULES / "content.toml")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=0x2FFF), max_size=80))
def test_fast_fold_equals_the_reference(text: str) -> None:
    from gateway.detect.rules import _fold_slow, fold

    folded = fold(text)
    assert folded == _fold_slow(text) and len(folded) == len(text)


# --------------------------------------------------------------------------------------------
# All three rule detectors over the demo scenario


def _route_for(stream: str, label: str) -> tuple[Route, str]:
    """How the demo's streams would reach the gateway: A2P notifications and bank-sender spoofs
    through an aggregator's A2P bind, everything else from local subscribers."""
    if stream.startswith("a2p") or label == "spoof":
        return Route.A2P, "aggregator"
    return Route.LOCAL, "local-msc"


def test_demo_scenario_rates() -> None:
    from gateway.detect.sender import SenderDetector
    from gateway.detect.urls import UrlDetector
    from simulators.scenario import load_scenario

    detectors: list[Detector] = [
        _DET,
        UrlDetector.from_file(RULES / "brands.toml"),
        SenderDetector.from_file(RULES / "senders.toml"),
    ]
    messages = load_scenario(ROOT / "config" / "scenarios" / "demo.toml").messages(
        count=3000, seed=1
    )
    total: Counter[str] = Counter()
    flagged: Counter[str] = Counter()
    blocked: Counter[str] = Counter()
    for m in messages:
        route, smsc = _route_for(m.stream, m.label)
        sms = SmsEvent(
            source=m.source,
            dest=m.destination,
            text=m.text,
            source_ton=m.source_ton,
            source_npi=m.source_npi,
            dest_ton=m.dest_ton,
            dest_npi=m.dest_npi,
            route=route,
            smsc=smsc,
        )
        reasons = [r for d in detectors for r in d.inspect(sms, 0.0)]
        v = combine(reasons, Thresholds(flag=0.5, block=0.8))
        total[m.label] += 1
        flagged[m.label] += v.score >= 0.5 or v.decision is Decision.BLOCK
        blocked[m.label] += v.decision is Decision.BLOCK
    for label in sorted(total):
        print(
            f"{label:10} n={total[label]:5} flagged(>=0.5)={flagged[label] / total[label]:6.1%}"
            f" blocked(>=0.8)={blocked[label] / total[label]:6.1%}"
        )
    rate = {k: flagged[k] / total[k] for k in total}
    assert rate["smishing"] >= 0.9
    assert rate["spoof"] >= 0.9
    assert rate["multipart"] >= 0.9
    assert rate["fanout"] >= 0.9
    assert rate["normal"] <= 0.01


def test_the_prefilter_never_skips_a_rule_that_matches(content: ContentDetector) -> None:
    """The literal prefilter (each mandatory part of a pattern must be present) is only a
    shortcut: on 1,600 real texts and the project's templates it finds exactly what running
    every rule's patterns on every text finds."""
    import csv

    from gateway.detect.content import _match
    from gateway.detect.rules import normalise
    from gateway.detect.seed_texts import builtin_corpus

    corpus = Path(__file__).resolve().parent.parent / "config" / "corpus"
    texts = list(builtin_corpus()[0])
    for side in ("train", "heldout"):
        with open(corpus / f"real-{side}.csv", encoding="utf-8") as fh:
            texts.extend(r["text"] for r in csv.DictReader(fh))
    rules = content.rules
    for text in texts:
        norm = normalise(text[:2000])
        brute = {
            r.id
            for r in rules.rules
            if _match(r.patterns, norm)
            and not (r.unless and any(u.search(norm.text) for u in r.unless))
        }
        got = {x.rule_id for x in content.inspect(SmsEvent("a", "b", text), 0.0)}
        needs_feature = {r.id for r in rules.rules if r.requires}
        assert got - needs_feature == brute - needs_feature, text
