"""The Inspector: complaints to the short number, detector failures, alerts it builds."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from gateway.config import GatewayConfig
from gateway.domain import AlertKind, Decision, Reason, Route, SmsEvent, Thresholds
from gateway.pipeline.inspector import Inspector
from gateway.wiring import build_inspector

FORWARDED = (
    "Ваша карта заблокирована. Для разблокировки перейдите по ссылке kaspi-bank.kz-secure.com "
    "и введите код из SMS. От: +7 705 123 45 67"
)


@pytest.fixture
def inspector() -> Inspector:
    return build_inspector(GatewayConfig())


def test_a_forwarded_smishing_text_becomes_a_complaint_not_a_verdict_on_the_complainant(
    inspector: Inspector,
) -> None:
    sms = SmsEvent(source="77011234567", dest="1490", text=FORWARDED, source_ton=1,
                   route=Route.LOCAL, received_at=1000.0)  # fmt: skip
    out = inspector.inspect(sms, 1000.0)
    assert out.verdict.decision is Decision.ALLOW  # the subscriber who complains is not blocked
    assert out.verdict.rule_ids == ["complaint.forwarded"]
    assert out.complaint is not None
    assert out.complaint.complainant == "77011234567"
    assert out.complaint.forwarded_text == FORWARDED
    assert out.complaint.suspected_sender == "77051234567"
    (alert,) = out.alerts
    assert alert.kind is AlertKind.COMPLAINT
    assert alert.payload["complainant"] == "7701***4567"  # masked
    assert float(alert.payload["forwarded_score"]) >= 0.8  # type: ignore[arg-type]
    assert FORWARDED not in str(alert.payload)  # the text is not broadcast


def test_the_same_text_sent_to_a_subscriber_is_blocked(inspector: Inspector) -> None:
    sms = SmsEvent(source="77051234567", dest="77011234567", text=FORWARDED, source_ton=1,
                   route=Route.LOCAL)  # fmt: skip
    out = inspector.inspect(sms, 1000.0)
    assert out.verdict.decision is Decision.BLOCK and out.complaint is None
    assert [a.kind for a in out.alerts] == [AlertKind.SMS_VERDICT]


class _Broken:
    name = "broken"

    def inspect(self, sms: SmsEvent, now: float) -> Sequence[Reason]:
        raise RuntimeError("bug")


class _Fixed:
    name = "fixed"

    def inspect(self, sms: SmsEvent, now: float) -> Sequence[Reason]:
        return [Reason("fixed", "fixed.rule", 0.9, "always")]


def test_a_failing_detector_is_reported_and_the_others_still_decide() -> None:
    ins = Inspector([_Broken(), _Fixed()], Thresholds())
    out = ins.inspect(SmsEvent(source="a", dest="b", text="x"), 0.0)
    assert set(out.verdict.rule_ids) == {"broken.error", "fixed.rule"}
    assert out.verdict.decision is Decision.BLOCK


# -- the suspected sender of a complaint: published unmasked, so an address or nothing ---------


def _complaint(text: str) -> SmsEvent:
    return SmsEvent(source="77011234567", dest="1490", text=text, source_ton=1,
                    route=Route.LOCAL, received_at=1000.0)  # fmt: skip


@pytest.mark.parametrize(
    ("text", "leaked"),
    [
        # a name and surname after "от", then the first 11 digits of an IIN
        ("Пишут от Aigerim Tes 90010140100, просят код из SMS", "Aigerim"),
        ("Мне пишут от 90010140100, просят перевести деньги", "90010140100"),
        ("от Aigerim Tes", "Aigerim"),
        ("Сізге от Aigerim 900101300017 деп жазды", "9001013"),  # a name, then a whole IIN
        ("ИИН 900101300017 сұрады", "900101300017"),
        ("from: 1414", "1414"),  # a short code is not a sender id (all digits)
    ],
    ids=["name-and-iin-prefix", "iin-prefix", "name", "name-and-iin", "iin", "short-code"],
)
def test_a_name_or_an_iin_in_a_complaint_is_not_taken_as_its_sender(
    inspector: Inspector, text: str, leaked: str
) -> None:
    out = inspector.inspect(_complaint(text), 1000.0)
    assert out.complaint is not None and out.complaint.suspected_sender == ""
    (alert,) = out.alerts
    assert alert.payload["suspected_sender"] == ""
    assert leaked not in str(alert.payload)


@pytest.mark.parametrize(
    ("text", "sender"),
    [
        (FORWARDED, "77051234567"),  # +7 705 123 45 67
        ("Звонили с 8 (701) 123-45-67, представились банком", "77011234567"),
        ("Звонили с 8 916 123-45-67 из службы безопасности", "79161234567"),  # Russia, +7 9xx
        ("Пришло с +380 50 116 6299: вы выиграли приз", "380501166299"),  # E.164 with '+'
        ("От: KASPI\nВаша карта заблокирована", "KASPI"),
        ("от Kcell: ваш номер будет отключён", "Kcell"),
        ("отправлено от eGov, код 4821", "eGov"),
    ],
    ids=["kz-plus7", "kz-8", "ru-8", "ua-e164", "sender-id-line", "sender-id-colon", "camel-id"],
)
def test_a_phone_number_or_a_sender_id_is_taken_normalised(
    inspector: Inspector, text: str, sender: str
) -> None:
    out = inspector.inspect(_complaint(text), 1000.0)
    assert out.complaint is not None and out.complaint.suspected_sender == sender
    assert out.alerts[0].payload["suspected_sender"] == sender
