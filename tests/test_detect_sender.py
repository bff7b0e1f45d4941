"""The sender detector: protected sender ids from the wrong bind or route (exact and
look-alike), Kazakh mobile numbers arriving from abroad, malformed addresses, the MSISDN
helpers, reload and robustness."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.config_check import ConfigError
from gateway.detect.sender import SenderDetector, is_kz_mobile, normalise_msisdn
from gateway.domain import Decision, Reason, Route, SmsEvent, Thresholds, combine

RULES = Path(__file__).resolve().parent.parent / "config" / "rules"


@pytest.fixture(scope="module")
def det() -> SenderDetector:
    return SenderDetector.from_file(RULES / "senders.toml")


def check(
    det: SenderDetector,
    source: str,
    ton: int = 5,
    *,
    route: Route = Route.A2P,
    smsc: str = "aggregator",
    npi: int = 0,
) -> dict[str, Reason]:
    sms = SmsEvent(
        source=source,
        dest="77011234567",
        text="Код 1234",
        source_ton=ton,
        source_npi=npi,
        route=route,
        smsc=smsc,
    )
    return {r.rule_id: r for r in det.inspect(sms, 0.0)}


# --------------------------------------------------------------------------------------------
# Protected sender ids


@pytest.mark.parametrize("source", ["KASPI", "Kaspi.kz", "kaspi", "KASPI BANK", "Kaspi-Bank"])
def test_protected_id_from_wrong_bind_is_impersonation(det: SenderDetector, source: str) -> None:
    r = check(det, source)["sender.impersonation.kaspi"]
    assert r.score >= 0.85 and r.block and r.detector == "sender"
    assert combine([r], Thresholds()).decision is Decision.BLOCK


@pytest.mark.parametrize(
    ("source", "rule_id"),
    [
        ("KASPl", "sender.lookalike.kaspi"),  # l for I
        ("Каspi", "sender.lookalike.kaspi"),  # Cyrillic К and а
        ("KA5PI", "sender.lookalike.kaspi"),
        ("Kaspj", "sender.lookalike.kaspi"),  # one edit away
        ("Kaspi-Info", "sender.lookalike.kaspi"),  # brand inside
        ("HalykBonus", "sender.lookalike.halyk"),
        ("HALYK BANK", "sender.impersonation.halyk"),
        ("HaIykBank", "sender.lookalike.halyk"),  # capital I for l
        ("eGov", "sender.impersonation.egov"),
        ("EG0V", "sender.lookalike.egov"),
        ("KAZPOST", "sender.impersonation.kazpost"),
        ("Qazpost", "sender.impersonation.kazpost"),
        ("NBRK", "sender.impersonation.nationalbank"),
    ],
)
def test_lookalikes(det: SenderDetector, source: str, rule_id: str) -> None:
    found = check(det, source)
    assert rule_id in found, sorted(found)
    assert found[rule_id].score >= 0.8


def test_short_number_1414(det: SenderDetector) -> None:
    assert "sender.impersonation.egov_1414" in check(det, "1414", 0, smsc="aggregator")
    assert check(det, "1414", 0, smsc="egov-a2p") == {}
    assert check(det, "14140", 0) == {}


def test_allowed_bind_and_route_are_clean(det: SenderDetector) -> None:
    assert check(det, "KASPI", smsc="kaspi-a2p") == {}
    assert check(det, "Kaspi.kz", smsc="kaspi-a2p") == {}
    assert check(det, "Halyk Bank", smsc="halyk-a2p") == {}
    # allowed bind but wrong route: both must hold
    assert "sender.impersonation.kaspi" in check(
        det, "KASPI", smsc="kaspi-a2p", route=Route.INTERNATIONAL
    )
    # operator ids may come through any A2P bind, not from elsewhere
    assert check(det, "Beeline", smsc="aggregator") == {}
    assert "sender.impersonation.beeline" in check(det, "Beeline", route=Route.INTERNATIONAL)


@pytest.mark.parametrize("source", ["Yandex Go", "Glovo", "Wolt", "inDrive", "Chocofood", "Magnum"])
def test_ordinary_alphanumeric_senders_are_clean(det: SenderDetector, source: str) -> None:
    assert check(det, source) == {}


# --------------------------------------------------------------------------------------------
# Kazakh mobile numbers from an international route


@pytest.mark.parametrize(
    ("source", "ton", "npi"),
    [("77011234567", 1, 1), ("+77011234567", 1, 1), ("87011234567", 0, 1), ("+77771234567", 0, 1),
     ("7011234567", 2, 1), ("77471234567", 1, 0)],
)  # fmt: skip
def test_kz_mobile_on_international_route(
    det: SenderDetector, source: str, ton: int, npi: int
) -> None:
    r = check(det, source, ton, route=Route.INTERNATIONAL, smsc="hub", npi=npi)
    assert r["sender.kz_mobile_international"].score >= 0.8
    # the same number on the local route is ordinary traffic
    assert check(det, source, ton, route=Route.LOCAL, smsc="msc", npi=npi) == {}


@pytest.mark.parametrize(
    ("source", "ton"),
    [("79161234567", 1), ("77172123456", 1), ("447911123456", 1), ("1414", 0), ("KASPI", 5)],
)
def test_not_kz_mobile_from_abroad(det: SenderDetector, source: str, ton: int) -> None:
    found = check(det, source, ton, route=Route.INTERNATIONAL, smsc="hub", npi=1)
    assert "sender.kz_mobile_international" not in found


# --------------------------------------------------------------------------------------------
# Malformed addresses


@pytest.mark.parametrize(
    ("source", "ton", "kind"),
    [
        ("", 5, "empty"),
        ("   ", 1, "empty"),
        ("7701ABC4567", 1, "international_not_digits"),
        ("+7 701 123", 1, "international_not_digits"),
        ("7701123456", 1, "kz_length"),
        ("770112345678", 1, "kz_length"),
        ("+7701123456", 0, "kz_length"),
        ("12345", 1, "international_length"),
        ("1234567890123456", 1, "international_length"),
        ("VeryLongSenderId", 5, "alphanumeric_too_long"),
        ("77011234567", 5, "alphanumeric_digits"),
        ("KAS\x00PI", 5, "control"),
        ("Info\u202e", 5, "control"),
    ],
)
def test_malformed(det: SenderDetector, source: str, ton: int, kind: str) -> None:
    found = check(det, source, ton)
    r = found[f"sender.malformed.{kind}"]
    assert 0.2 <= r.score < 0.5 and not r.block and r.description


@pytest.mark.parametrize(
    ("source", "ton"), [("77011234567", 1), ("87011234567", 0), ("1414", 0), ("Beeline", 5)]
)
def test_wellformed(det: SenderDetector, source: str, ton: int) -> None:
    assert not any(k.startswith("sender.malformed") for k in check(det, source, ton))


# --------------------------------------------------------------------------------------------
# Helpers


@pytest.mark.parametrize(
    ("address", "ton", "npi", "e164"),
    [
        ("+77011234567", 1, 1, "77011234567"),
        ("77011234567", 1, 1, "77011234567"),
        ("87011234567", 0, 1, "77011234567"),
        ("8 (701) 123-45-67", 0, 1, "77011234567"),
        ("7011234567", 2, 1, "77011234567"),
        ("+77011234567", 0, 0, "77011234567"),
        ("0077011234567", 0, 1, "77011234567"),
        ("81044201234567", 0, 1, "44201234567"),
        ("447911123456", 1, 1, "447911123456"),
        ("1414", 0, 1, None),
        ("KASPI", 5, 0, None),
        ("77011234567", 5, 0, None),
        ("", 1, 1, None),
        ("+7701abc", 1, 1, None),
        ("77011234567", 0, 9, None),  # private numbering plan
    ],
)
def test_normalise_msisdn(address: str, ton: int, npi: int, e164: str | None) -> None:
    assert normalise_msisdn(address, ton, npi) == e164


def test_is_kz_mobile() -> None:
    for prefix in ("700", "701", "702", "705", "706", "707", "708", "747", "771", "775", "776",
                   "777", "778", "760", "764", "785"):  # fmt: skip
        assert is_kz_mobile(f"+7{prefix}1234567", 1), prefix
        assert is_kz_mobile(f"8{prefix}1234567", 0), prefix
    for not_mobile in ("+77172123456", "+77272123456", "+79161234567", "+7751123456", "1414"):
        assert not is_kz_mobile(not_mobile, 1 if not_mobile.startswith("+") else 0)


def test_kz_mobile_pattern_agrees_with_phonenumbers() -> None:
    import phonenumbers

    for n in range(700, 800):
        number = f"+7{n}1234567"
        parsed = phonenumbers.parse(number)
        expected = phonenumbers.number_type(parsed) == phonenumbers.PhoneNumberType.MOBILE and (
            phonenumbers.region_code_for_number(parsed) == "KZ"
        )
        assert is_kz_mobile(number, 1) == expected, number


# --------------------------------------------------------------------------------------------
# Rule file


def test_reload(tmp_path: Path) -> None:
    path = tmp_path / "senders.toml"
    shutil.copy(RULES / "senders.toml", path)
    d = SenderDetector.from_file(path)
    assert check(d, "ACMEPAY") == {}
    good = path.read_text(encoding="utf-8")
    path.write_text(
        good + '\n[[sender]]\nid = "acme"\nnames = ["AcmePay"]\nallowed_smsc = ["acme"]\n',
        encoding="utf-8",
    )
    d.reload()
    assert "sender.impersonation.acme" in check(d, "ACMEPAY")
    assert check(d, "ACMEPAY", smsc="acme") == {}
    for bad, key in (
        (good.replace('allowed_routes = ["a2p"]', 'allowed_routes = ["air"]', 1),
         r"sender\[0\]\.allowed_routes\[0\]: unknown route 'air'"),
        (good.replace('allowed_smsc = ["kaspi-a2p"]\nallowed_routes = ["a2p"]', "", 1),
         r"sender\[0\]: give allowed_smsc"),
        (good.replace('names = ["Jusan"', 'names = ["KASPI"', 1), r"sender\[2\]\.names\[0\]"),
        (good.replace("malformed = 0.4", "malformed = -1", 1), r"scores\.malformed"),
        (good.replace('tokens = ["kaspi"]', 'tokens = ["kz"]', 1), r"sender\[0\]\.tokens\[0\]"),
        (good.replace('id = "kaspi"', 'id = "kaspi"\ncolour = "red"', 1),
         r"sender\[0\]\.colour: unknown key"),
    ):  # fmt: skip
        path.write_text(bad, encoding="utf-8")
        with pytest.raises(ConfigError, match=key):
            d.reload()
        assert "sender.impersonation.acme" in check(d, "ACMEPAY")  # previous rules kept


# --------------------------------------------------------------------------------------------
# Robustness

_DET = SenderDetector.from_file(RULES / "senders.toml")


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(st.text(max_size=30), st.from_regex(r"\+?[78]?[0-9 ()\-]{0,16}", fullmatch=True)),
    st.integers(0, 255),
    st.integers(0, 255),
    st.sampled_from(list(Route)),
    st.text(max_size=12),
)
def test_never_raises(source: str, ton: int, npi: int, route: Route, smsc: str) -> None:
    sms = SmsEvent(source, "", "", source_ton=ton, source_npi=npi, route=route, smsc=smsc)
    for r in _DET.inspect(sms, 0.0):
        assert 0 <= r.score <= 1
    normalise_msisdn(source, ton, npi)
    is_kz_mobile(source, ton, npi)


# ---- grey route (gateway/detect/greyroute.py) ------------------------------------------------


def test_otp_from_a_local_sim_is_grey_route_but_not_from_an_a2p_bind_or_a_bank_sender() -> None:
    from gateway.detect.greyroute import GreyRouteDetector
    from gateway.domain import Route, SmsEvent

    det = GreyRouteDetector()
    otp = "Код для входа в eGov mobile: 347605. Никому не сообщайте"
    local = SmsEvent(source="77025799362", dest="77011234567", text=otp, source_ton=1,
                     source_npi=1, route=Route.LOCAL)  # fmt: skip
    (reason,) = det.inspect(local, 0.0)
    assert reason.rule_id == "greyroute.p2p_otp" and 0.5 <= reason.score < 0.8
    a2p = SmsEvent(source="77025799362", dest="77011234567", text=otp, route=Route.A2P)
    assert det.inspect(a2p, 0.0) == ()
    bank = SmsEvent(source="Kaspi.kz", dest="77011234567", text=otp, source_ton=5)
    assert det.inspect(bank, 0.0) == ()
    chat = SmsEvent(source="77025799362", dest="77011234567", text="Купи хлеб", source_ton=1)
    assert det.inspect(chat, 0.0) == ()


def test_protected_a2p_is_judged_by_its_contract_not_by_the_p2p_fan_out() -> None:
    """A registered sender on its contracted bind reaching 10,000 customers a minute raises no
    fan-out (the P2P limits do not apply to it) until it passes its own max_per_minute; the
    same id elsewhere is still impersonation."""
    from gateway.config import GatewayConfig
    from gateway.wiring import build_inspector

    cfg = GatewayConfig()
    inspector = build_inspector(cfg)
    rules = inspector.sender
    assert rules is not None
    kaspi = next(p for p in rules.config.senders if p.id == "kaspi")
    assert kaspi.max_per_minute == 30000
    otp = "Код для входа в Kaspi.kz: {code}. Никому не сообщайте его"
    decisions = set()
    for i in range(10_000):
        sms = SmsEvent(source="Kaspi.kz", dest=f"7701{i:07d}", text=otp.format(code=1000 + i),
                       source_ton=5, route=Route.A2P, smsc="kaspi-a2p")  # fmt: skip
        out = inspector.inspect(sms, 1000.0 + i * 0.005)  # 10,000 in 50 s
        decisions.add(out.verdict.decision)
        assert not out.alerts, out.verdict.rule_ids
    assert decisions == {Decision.ALLOW}
    # over its contract: flagged for an analyst, never blocked
    det = SenderDetector.from_file(RULES / "senders.toml")
    sms = SmsEvent(source="Kaspi.kz", dest="77011234567", text="x", source_ton=5,
                   route=Route.A2P, smsc="kaspi-a2p")  # fmt: skip
    found = [det.inspect(sms, 5000.0 + i * 0.001) for i in range(30_001)]
    assert not any(found[:30_000]) and [r.rule_id for r in found[-1]] == ["sender.volume.kaspi"]
    # spoofed from a P2P bind: impersonation, blocks
    spoof = SmsEvent(source="Kaspi.kz", dest="77011234567", text=otp.format(code=1), source_ton=5,
                     route=Route.LOCAL, smsc="local")  # fmt: skip
    assert inspector.inspect(spoof, 9000.0).verdict.decision is Decision.BLOCK
