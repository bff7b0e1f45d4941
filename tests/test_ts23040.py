"""gsm_probe.ts23040: SMS TPDU codec (3GPP TS 23.040 §9.2).

Four kinds of proof:
- published vectors (dreamfabric's SMS-DELIVER / SMS-SUBMIT "hellohello", the "How are you?"
  DELIVER, smspdudecoder's alphanumeric addresses), each also decoded by the oracle
  (smspdudecoder 2.2.0) in the test itself, so a vector cannot be wrong silently;
- hand-built edge cases (fill bits after a UDH, odd BCD, '*' '#', quarter-hour zones, TP-MMS,
  TP-SRI, TP-RP, DCS groups, status reports, malformed input);
- round trips with hypothesis (any text, GSM 7-bit or UCS2, single and multipart);
- differential tests against smspdudecoder on generated PDUs, both ways, and fuzzing: random
  or mutated bytes make the decoders raise TpduError and nothing else.
"""

from __future__ import annotations

import contextlib
import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from io import StringIO
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from smspdudecoder.codecs import GSM, UCS2  # type: ignore[import-untyped]
from smspdudecoder.elements import Date, Number  # type: ignore[import-untyped]
from smspdudecoder.fields import SMSDeliver, SMSSubmit  # type: ignore[import-untyped]

from gsm_probe.ts23040 import (
    Address,
    Concat,
    SmsDeliver,
    SmsStatusReport,
    SmsSubmit,
    TpduError,
    alphabet,
    decode_deliver,
    decode_mt,
    decode_status_report,
    decode_submit,
    deliver_parts,
    encode_deliver,
    encode_status_report,
    encode_submit,
    join_parts,
    submit_parts,
    tpdu_length,
)

KZ = timezone(timedelta(hours=5))
WHEN = datetime(2024, 11, 23, 10, 15, 30, tzinfo=KZ)
SENDER = Address("77011234567")
KCELL_SMSC = Address("77010000000")
KAZAKH = "Сәлеметсіз бе! Тест қоңырауы"
RUSSIAN = "Ваш код: 4821"

# GSM 03.38 default alphabet and extension table, as the oracle spells them (they agree with
# the gsm0338 package, which smsc.text builds on).
GSM_BASE = GSM.ALPHABET.replace("\x1b", "")
GSM_CHARS = GSM_BASE + "".join(GSM.ALPHABET_EXT.values())
DIGITS = "0123456789"


def oracle_deliver(pdu: bytes) -> dict[str, Any]:
    result: dict[str, Any] = SMSDeliver.decode(StringIO(pdu.hex().upper()))
    return result


def oracle_submit(pdu: bytes) -> dict[str, Any]:
    result: dict[str, Any] = SMSSubmit.decode(StringIO(pdu.hex().upper()))
    return result


# --------------------------------------------------------------------------------------------
# Published vectors


def test_dreamfabric_deliver_hellohello() -> None:
    # SMSC +27381000015, originator TON 4 (subscriber) NPI 8 (national), SCTS 99-03-29
    # 15:16:59 +2h (zone octet 0x80: 8 quarter hours), 10 septets "hellohello".
    vector = "07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37"
    oracle = oracle_deliver(bytes.fromhex(vector))
    assert oracle["user_data"]["data"] == "hellohello"
    msg = decode_deliver(bytes.fromhex(vector))
    assert msg.smsc == Address("27381000015")
    assert msg.originator == Address("27838890001", ton=4, npi=8)
    assert msg.originator.number == oracle["sender"]["number"]
    assert msg.text == "hellohello"
    assert msg.timestamp == oracle["scts"]
    assert msg.timestamp.utcoffset() == timedelta(hours=2)
    assert not msg.more_messages  # first octet 04: TP-MMS 1, no more messages
    assert encode_deliver(msg).hex().upper() == vector


def test_dreamfabric_submit_hellohello() -> None:
    # First octet 11: SMS-SUBMIT, TP-VPF relative; VP 0xAA = 4 days; no SMSC (00).
    vector = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37"
    oracle = oracle_submit(bytes.fromhex(vector))
    assert oracle["validity-days"] == 4
    msg = decode_submit(bytes.fromhex(vector))
    assert msg == SmsSubmit(Address("46708251358"), "hellohello", validity_minutes=4 * 24 * 60)
    assert msg.destination.number == oracle["recipient"]["number"]
    assert encode_submit(msg).hex().upper() == vector
    assert tpdu_length(bytes.fromhex(vector)) == 23


def test_how_are_you_deliver_with_minus_zero_zone() -> None:
    # The widely copied "How are you?" DELIVER; its zone octet 0x08 is "-0" quarter hours.
    vector = "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07"
    oracle = oracle_deliver(bytes.fromhex(vector))
    msg = decode_deliver(bytes.fromhex(vector))
    assert (msg.text, oracle["user_data"]["data"]) == ("How are you?", "How are you?")
    assert str(msg.originator) == "+31641600986"
    assert msg.smsc == Address("31624000000")
    assert msg.timestamp == oracle["scts"] == datetime(2002, 8, 26, 19, 37, 41, tzinfo=UTC)
    # -0 and +0 are the same zone: re-encoding gives +0, every other octet unchanged.
    again = encode_deliver(msg).hex().upper()
    assert again == vector.replace("20806291731408", "20806291731400")


@pytest.mark.parametrize(
    ("field", "text"), [("0BD0CDE6DB5DCE03", "MMoney"), ("14D0C4F23C7D760390EF7619", "Design@Home")]
)
def test_alphanumeric_originator_vectors(field: str, text: str) -> None:
    # smspdudecoder's documented TP-OA examples: length in semi-octets, TOA D0, 7-bit packed.
    pdu = bytes.fromhex("0004" + field + "0000" + "42113201000002" + "00")
    oracle = oracle_deliver(pdu)
    assert oracle["sender"]["number"] == text
    msg = decode_deliver(pdu)
    assert msg.originator == Address(text, ton=5, npi=0)
    assert msg.timestamp == datetime(2024, 11, 23, 10, 0, tzinfo=KZ)
    assert encode_deliver(msg) == pdu


# --------------------------------------------------------------------------------------------
# Edge cases, hand-built


def test_fill_bits_after_udh() -> None:
    # §9.2.3.24: UDH 05 00 03 2A 02 01 is 6 octets = 48 bits; the text starts at bit 49 (one
    # fill bit), so UDL = 7 header septets + 5 = 12.
    pdu = deliver_parts(SENDER, "a" * 200, timestamp=WHEN, concat_ref=0x2A)[0]
    msg = decode_deliver(pdu)
    assert msg.udh == bytes.fromhex("0500032A0201")
    ud_start = len(pdu) - ((7 + 153) * 7 + 7) // 8
    assert pdu[ud_start - 1] == 160  # UDL in septets, header included
    assert pdu[ud_start : ud_start + 6] == msg.udh
    assert pdu[ud_start + 6] == (ord("a") << 1) & 0xFF  # 1 fill bit, then 'a' (0x61)
    oracle = oracle_deliver(pdu)
    assert oracle["user_data"]["data"] == "a" * 153
    assert oracle["user_data"]["header"]["elements"][0]["data"]["reference"] == 0x2A
    one = SmsDeliver(SENDER, "hello", WHEN, udh=bytes.fromhex("0500032A0201"))
    expected = "0C" + "0500032A0201" + GSM.encode("@" * 7 + "hello")[12:]
    assert encode_deliver(one).hex().upper().endswith(expected)


def test_16bit_concat_reference() -> None:
    parts = submit_parts(SENDER, "x" * 400, reference=9, concat_ref=0x1234)
    msgs = [decode_submit(p) for p in parts]
    assert [m.udh[:6] for m in msgs] == [bytes.fromhex("060804123403")] * 3
    assert [m.concat for m in msgs] == [Concat(0x1234, 3, s) for s in (1, 2, 3)]
    assert [len(m.text) for m in msgs] == [152, 152, 96]
    assert [m.reference for m in msgs] == [9, 10, 11]


def test_bcd_odd_length_filler_and_star_hash_digits() -> None:
    pdu = encode_submit(SmsSubmit(Address("*100#", ton=0, npi=1), "?"))
    assert pdu[3:8] == bytes.fromhex("05811A00FB")  # 5 digits, TOA 81, "*1" "00" "#F"
    assert decode_submit(pdu).destination == Address("*100#", ton=0, npi=1)
    abc = Address("12abc", ton=2, npi=1)
    assert decode_submit(encode_submit(SmsSubmit(abc, "x"))).destination == abc
    assert decode_submit(encode_submit(SmsSubmit(Address("+77071234567"), "x"))).destination == (
        Address("77071234567")
    )


def test_filler_inside_number_is_rejected() -> None:
    pdu = bytearray(encode_submit(SmsSubmit(Address("7707123"), "x")))
    pdu[5] = 0xF7  # second digit pair "7F" -> the filler where a digit must be
    with pytest.raises(TpduError, match="filler"):
        decode_submit(bytes(pdu))


@pytest.mark.parametrize(
    ("minutes", "octet"),
    [(5 * 60, 0x02), (-3 * 60, 0x29), (5 * 60 + 45, 0x32), (0, 0x00), (-(19 * 60 + 45), 0x9F)],
)
def test_scts_quarter_hour_zones(minutes: int, octet: int) -> None:
    zone = timezone(timedelta(minutes=minutes))
    when = datetime(2025, 1, 31, 23, 59, 58, tzinfo=zone)
    pdu = encode_deliver(SmsDeliver(SENDER, "t", when))
    scts = pdu[12:19]
    assert scts[6] == octet
    assert Date.decode(scts.hex()) == when  # the oracle's reading of the zone
    back = decode_deliver(pdu).timestamp
    assert back == when and back.utcoffset() == timedelta(minutes=minutes)


def test_scts_needs_a_zone_in_quarter_hours() -> None:
    with pytest.raises(TpduError, match="no time zone"):
        encode_deliver(SmsDeliver(SENDER, "t", datetime(2024, 1, 1)))
    odd = datetime(2024, 1, 1, tzinfo=timezone(timedelta(minutes=10)))
    with pytest.raises(TpduError, match="TP-SCTS"):
        encode_deliver(SmsDeliver(SENDER, "t", odd))


def test_first_octet_flags() -> None:
    msg = SmsDeliver(
        SENDER, "t", WHEN, more_messages=True, status_report_indication=True, reply_path=True
    )
    pdu = encode_deliver(msg)
    assert pdu[1] == 0x80 | 0x20  # RP, SRI; TP-MMS 0 = more messages waiting
    assert decode_deliver(pdu) == msg
    header = oracle_deliver(pdu)["header"]
    assert (header["rp"], header["sri"], header["mms"]) == (True, True, False)
    sub = SmsSubmit(SENDER, "t", request_status_report=True, reject_duplicates=True)
    assert encode_submit(sub)[1] == 0x01 | 0x04 | 0x20
    assert decode_submit(encode_submit(sub)) == sub


def test_validity_relative_every_octet_round_trips() -> None:
    for vp in range(256):
        pdu = bytes.fromhex("001100" + "0B916407281553F8" + "0000") + bytes((vp, 0))
        minutes = decode_submit(pdu).validity_minutes
        assert minutes is not None
        assert encode_submit(SmsSubmit(Address("46708251358"), "", validity_minutes=minutes))[
            13
        ] == (vp)
    rounded = encode_submit(SmsSubmit(SENDER, "", validity_minutes=61))
    assert decode_submit(rounded).validity_minutes == 65


def test_absolute_validity_is_skipped() -> None:
    pdu = bytes.fromhex("0019000B916407281553F80000") + bytes.fromhex("42113201000002") + b"\x00"
    assert decode_submit(pdu).validity_minutes is None


@pytest.mark.parametrize(
    ("dcs", "kind"),
    [
        (0x00, "gsm7"),
        (0x10, "gsm7"),  # class 0 (flash)
        (0x18, "ucs2"),  # UCS2, class 0
        (0x04, "8bit"),
        (0x24, "8bit"),  # compressed: kept as octets
        (0x2C, "8bit"),  # compressed, reserved character set: still compressed octets
        (0x0C, "gsm7"),  # reserved character set: GSM 7-bit (TS 23.038 §4)
        (0x48, "ucs2"),  # marked for automatic deletion, UCS2
        (0x4C, "gsm7"),  # marked for automatic deletion, reserved character set
        (0x84, "gsm7"),  # reserved coding group 1000
        (0xB7, "gsm7"),  # reserved coding group 1011
        (0xC8, "gsm7"),  # message waiting, discard, voicemail active
        (0xD9, "gsm7"),  # message waiting, store, fax active
        (0xE0, "ucs2"),  # message waiting, store, UCS2
        (0xF0, "gsm7"),  # class 0, GSM 7-bit
        (0xF6, "8bit"),  # class 2, 8-bit (SIM data download)
        (0xF8, "gsm7"),  # reserved bit 3 set: the coding is still bit 2's
        (0xFC, "8bit"),
    ],
)
def test_dcs_groups(dcs: int, kind: str) -> None:
    assert alphabet(dcs) == kind
    text = {"gsm7": "Voicemail: 2", "ucs2": KAZAKH, "8bit": ""}[kind]
    data = b"\x01\x02\xff" if kind == "8bit" else b""
    msg = SmsDeliver(SENDER, text, WHEN, dcs=dcs, user_data=data)
    assert decode_deliver(encode_deliver(msg)) == msg


# The dreamfabric "hellohello" SMS-DELIVER (10 septets packed in 9 octets, TP-UDL 0x0A) with
# its TP-DCS octet (after TP-PID 00) replaced by reserved codings. TS 23.038 §4: "Any reserved
# codings shall be assumed to be the GSM 7 bit default alphabet (the same as codepoint
# 00000000) by a receiving entity." Read as 8-bit, TP-UDL 10 asks for 10 octets of 9.
HELLOHELLO_WITH_DCS = "07917283010010F5040BC87238880900F100{:02X}993092516195800AE8329BFD4697D9EC37"


@pytest.mark.parametrize(
    "dcs",
    [0x0C, 0x1F, 0x4C, 0x5D, 0x80, 0x84, 0x9A, 0xAF, 0xB0, 0xBF, 0xF8],
    ids=lambda dcs: f"{dcs:02X}",
)
def test_reserved_codings_are_read_as_gsm_7bit(dcs: int) -> None:
    pdu = bytes.fromhex(HELLOHELLO_WITH_DCS.format(dcs))
    msg = decode_mt(pdu)  # what the probe modem driver calls for +CMT / +CMGR
    assert isinstance(msg, SmsDeliver)
    assert (msg.text, msg.user_data, msg.dcs) == ("hellohello", b"", dcs)
    assert msg.originator == Address("27838890001", ton=4, npi=8)
    assert encode_deliver(msg) == pdu  # and written back the same


def test_eight_bit_data_is_still_octets() -> None:
    # the same header with TP-DCS F4 (class 0, 8-bit): TP-UDL 03 counts octets
    pdu = bytes.fromhex("07917283010010F5040BC87238880900F100F49930925161958003E8329B")
    msg = decode_deliver(pdu)
    assert (msg.text, msg.user_data) == ("", bytes.fromhex("E8329B"))


def test_ucs2_surrogate_pairs_are_never_split() -> None:
    text = "Ж" * 66 + "😀" + "ә" * 70  # the pair would straddle code units 67/68
    parts = [decode_deliver(p) for p in deliver_parts(SENDER, text, timestamp=WHEN, concat_ref=1)]
    assert [p.text for p in parts] == ["Ж" * 66, "😀" + "ә" * 65, "ә" * 5]
    assert join_parts(parts) == text


def test_extension_character_never_split_from_escape() -> None:
    text = "a" * 152 + "€" + "b" * 10  # 152 + 2 + 10 = 164 septets
    parts = [decode_submit(p) for p in submit_parts(SENDER, text, reference=0, concat_ref=3)]
    assert [p.text for p in parts] == ["a" * 152, "€" + "b" * 10]
    assert [oracle_submit(encode_submit(p))["user_data"]["data"] for p in parts] == [
        "a" * 152,
        "€" + "b" * 10,
    ]


def test_single_part_limits() -> None:
    assert len(submit_parts(SENDER, "a" * 160, reference=0, concat_ref=0)) == 1
    assert len(submit_parts(SENDER, "{" * 80, reference=0, concat_ref=0)) == 1
    assert len(submit_parts(SENDER, "{" * 81, reference=0, concat_ref=0)) == 2
    assert len(submit_parts(SENDER, "ә" * 70, reference=0, concat_ref=0)) == 1
    assert len(submit_parts(SENDER, "ә" * 71, reference=0, concat_ref=0)) == 2
    assert len(submit_parts(SENDER, "a" * 161, reference=0, concat_ref=0)) == 2
    assert len(submit_parts(SENDER, "a" * 306, reference=0, concat_ref=0)) == 2
    assert len(submit_parts(SENDER, "a" * 307, reference=0, concat_ref=0)) == 3


def test_kazakh_multipart_deliver_with_smsc() -> None:
    text = (KAZAKH + " ") * 6
    pdus = deliver_parts(SENDER, text, timestamp=WHEN, concat_ref=0x77, smsc=KCELL_SMSC)
    parts = [decode_deliver(p) for p in pdus]
    assert {p.dcs for p in parts} == {0x08}
    assert {p.smsc for p in parts} == {KCELL_SMSC}
    assert join_parts(list(reversed(parts))) == text
    assert "".join(oracle_deliver(p)["user_data"]["data"] for p in pdus) == text


def test_status_report_round_trip_and_dispatch() -> None:
    report = SmsStatusReport(
        reference=0x42,
        recipient=Address("77071234567"),
        timestamp=WHEN,
        discharge_time=WHEN + timedelta(seconds=7),
        status=0x00,
        smsc=KCELL_SMSC,
    )
    pdu = encode_status_report(report)
    assert pdu.hex().upper() == (
        "07917710000000F0"
        + "0642"
        + "0B917770214365F7"
        + "42113201510302"
        + "42113201517302"
        + "00"
    )
    assert decode_status_report(pdu) == report
    assert decode_mt(pdu) == report
    # A TP-PI and what follows it are accepted and not kept (§9.2.2.3).
    assert decode_status_report(pdu + bytes.fromhex("0300000000")) == report
    deliver = encode_deliver(SmsDeliver(SENDER, RUSSIAN, WHEN, dcs=8))
    assert decode_mt(deliver) == decode_deliver(deliver)
    assert decode_mt(pdu[8:], with_smsc=False) == SmsStatusReport(
        0x42, Address("77071234567"), WHEN, WHEN + timedelta(seconds=7), 0
    )


def test_alphanumeric_with_extension_characters() -> None:
    sender = Address("[Kaspi]€", ton=5, npi=0)  # 3 extension characters: 11 septets
    assert decode_deliver(encode_deliver(SmsDeliver(sender, "x", WHEN))).originator == sender
    with pytest.raises(TpduError, match="11 septets"):
        encode_deliver(SmsDeliver(Address("Kaspi.kz Bank", ton=5, npi=0), "x", WHEN))


def test_8bit_data_with_udh() -> None:
    udh = bytes.fromhex("0605040B8423F0")  # application port addressing, 16 bit (WAP push)
    msg = SmsDeliver(SENDER, "", WHEN, dcs=0x04, udh=udh, user_data=b"\x01\x06\x00")
    pdu = encode_deliver(msg)
    assert decode_deliver(pdu) == msg
    assert oracle_deliver(pdu)["user_data"]["data"] == b"\x01\x06\x00"


# --------------------------------------------------------------------------------------------
# Malformed input


def _valid_deliver() -> bytes:
    return deliver_parts(SENDER, "a" * 170, timestamp=WHEN, concat_ref=5, smsc=KCELL_SMSC)[0]


def test_every_truncation_is_tpdu_error() -> None:
    for pdu in (_valid_deliver(), encode_submit(SmsSubmit(SENDER, RUSSIAN, dcs=8))):
        for cut in range(len(pdu)):
            with pytest.raises(TpduError):
                decode_mt(pdu[:cut]) if pdu[8] & 3 == 0 else decode_submit(pdu[:cut])


def test_udl_larger_than_data() -> None:
    pdu = encode_deliver(SmsDeliver(SENDER, "", WHEN, dcs=4, user_data=b"abc"))
    bad = pdu[:-4] + b"\x05" + pdu[-3:]
    with pytest.raises(TpduError, match=r"TP-UD: 5 octets needed, 3 left \(at octet 20\)"):
        decode_deliver(bad)
    seven = encode_deliver(SmsDeliver(SENDER, "", WHEN))[:-1] + b"\xa1"  # UDL 161 septets
    with pytest.raises(TpduError, match="TP-UDL 161 over 160"):
        decode_deliver(seven + bytes(141))


def test_udh_past_the_end() -> None:
    good = encode_deliver(SmsDeliver(SENDER, "", WHEN, dcs=4, udh=bytes.fromhex("0500030A0201")))
    bad = bytearray(good)
    bad[20] = 0x09  # UDHL 9 in 6 octets of user data
    with pytest.raises(TpduError, match="TP-UDHL 9 runs past"):
        decode_deliver(bytes(bad))
    bad[20] = 0x05
    bad[22] = 0x07  # IE length 7 inside a 5-octet UDH
    with pytest.raises(TpduError, match="user data header"):
        decode_deliver(bytes(bad))


def test_udhi_with_empty_user_data() -> None:
    pdu = bytearray(encode_deliver(SmsDeliver(SENDER, "", WHEN)))
    pdu[1] |= 0x40
    with pytest.raises(TpduError, match="TP-UDHI set"):
        decode_deliver(bytes(pdu))


def test_bad_mti() -> None:
    pdu = bytearray(encode_deliver(SmsDeliver(SENDER, "x", WHEN)))
    pdu[1] |= 0x03
    with pytest.raises(TpduError, match=r"TP-MTI 3 \(reserved\).*at octet 1"):
        decode_mt(bytes(pdu))
    with pytest.raises(TpduError, match="expected SMS-SUBMIT"):
        decode_submit(encode_deliver(SmsDeliver(SENDER, "x", WHEN)))


def test_bad_scts() -> None:
    pdu = bytearray(encode_deliver(SmsDeliver(SENDER, "x", WHEN)))
    pdu[13] = 0x31  # month 13
    with pytest.raises(TpduError, match=r"month must be in 1\.\.12"):
        decode_deliver(bytes(pdu))
    pdu[13] = 0x1A
    with pytest.raises(TpduError, match="not BCD"):
        decode_deliver(bytes(pdu))


def test_encoding_errors_are_tpdu_error() -> None:
    with pytest.raises(TpduError, match="cannot be encoded"):
        encode_submit(SmsSubmit(SENDER, KAZAKH, dcs=0))
    with pytest.raises(TpduError, match="161 septets"):
        encode_submit(SmsSubmit(SENDER, "a" * 161))
    with pytest.raises(TpduError, match="not a BCD digit"):
        encode_submit(SmsSubmit(Address("7701-123"), "x"))
    with pytest.raises(TpduError, match="message says"):
        encode_submit(
            SmsSubmit(SENDER, "x", udh=bytes.fromhex("050003010201"), concat=Concat(1, 2, 2))
        )
    with pytest.raises(TpduError, match="255"):
        submit_parts(SENDER, "a" * 153 * 256, reference=0, concat_ref=0)


def test_join_parts_rejects_incomplete_sets() -> None:
    parts = [
        decode_deliver(p) for p in deliver_parts(SENDER, "z" * 400, timestamp=WHEN, concat_ref=1)
    ]
    with pytest.raises(TpduError, match=r"incomplete or repeated parts \[1, 3\] of 3"):
        join_parts([parts[0], parts[2]])
    with pytest.raises(TpduError, match="repeated"):
        join_parts([*parts, parts[1]])
    other = decode_deliver(deliver_parts(SENDER, "y" * 400, timestamp=WHEN, concat_ref=2)[1])
    with pytest.raises(TpduError, match="different messages"):
        join_parts([parts[0], other, parts[2]])
    with pytest.raises(TpduError, match="no parts"):
        join_parts([])


# --------------------------------------------------------------------------------------------
# Round trips (hypothesis)


def fit_units(text: str, units: int) -> str:
    """The longest prefix of ``text`` that is at most ``units`` UTF-16 code units."""
    out: list[str] = []
    for char in text:
        units -= 2 if ord(char) > 0xFFFF else 1
        if units < 0:
            break
        out.append(char)
    return "".join(out)


zones = st.integers(-79, 79).map(lambda q: timezone(timedelta(minutes=15 * q)))
timestamps = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=zones
).map(lambda d: d.replace(microsecond=0))
gsm_text = st.text(alphabet=GSM_CHARS, max_size=700)
any_text = st.text(st.characters(codec="utf-8"), min_size=1, max_size=300)
numbers = st.text(alphabet=DIGITS + "*#abc", max_size=20)
alnum = st.text(alphabet=GSM_BASE, min_size=1, max_size=11)
addresses = st.one_of(
    st.builds(Address, numbers, st.sampled_from([0, 1, 2, 4]), st.sampled_from([0, 1, 8])),
    st.builds(Address, alnum, st.just(5), st.just(0)),
)
smscs = st.one_of(st.none(), st.builds(Address, st.text(DIGITS, min_size=1, max_size=20)))


@given(gsm_text, timestamps, st.integers(0, 0xFFFF))
def test_gsm7_text_round_trips(text: str, when: datetime, ref: int) -> None:
    pdus = deliver_parts(SENDER, text, timestamp=when, concat_ref=ref)
    parts = [decode_deliver(p) for p in pdus]
    assert {p.dcs for p in parts} == {0}
    assert all(p.timestamp == when and p.timestamp.utcoffset() == when.utcoffset() for p in parts)
    assert join_parts(parts) == text
    sub = [decode_submit(p) for p in submit_parts(SENDER, text, reference=1, concat_ref=ref)]
    assert "".join(p.text for p in sub) == text


@given(any_text, st.integers(0, 0xFF))
def test_any_text_round_trips(text: str, ref: int) -> None:
    pdus = submit_parts(Address("77071234567"), text, reference=0, concat_ref=ref)
    parts = [decode_submit(p) for p in pdus]
    assert "".join(p.text for p in parts) == text
    if any(c not in GSM_CHARS for c in text):
        assert {p.dcs for p in parts} == {8}
        assert all(
            len(p.text.encode("utf-16-be")) <= (134 if len(parts) > 1 else 140) for p in parts
        )
    assert all("\ufffd" not in p.text for p in parts) or "\ufffd" in text


@given(
    addresses,
    st.one_of(gsm_text.map(lambda t: t[:100]), any_text.map(lambda t: fit_units(t, 70))),
    timestamps,
    smscs,
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.integers(0, 255),
)
def test_deliver_round_trips(
    originator: Address,
    text: str,
    when: datetime,
    smsc: Address | None,
    mms: bool,
    sri: bool,
    rp: bool,
    pid: int,
) -> None:
    dcs = 0 if all(c in GSM_CHARS for c in text) else 8
    msg = SmsDeliver(originator, text, when, pid, dcs, None, b"", b"", mms, sri, rp, smsc)
    assert decode_deliver(encode_deliver(msg)) == msg
    assert decode_deliver(encode_deliver(msg)[1 + encode_deliver(msg)[0] :], with_smsc=False) == (
        SmsDeliver(originator, text, when, pid, dcs, None, b"", b"", mms, sri, rp, None)
    )


# --------------------------------------------------------------------------------------------
# Differential against smspdudecoder

ORACLE = settings(max_examples=150, deadline=None)
# The oracle reads '*', '#', 'a'-'c' as the hex digits A-E.
TO_ORACLE = str.maketrans("*#abc", "ABCDE")
# DCS values on whose alphabet both codecs agree (the oracle reads bits 3..2 only).
COMMON_DCS = st.sampled_from([0x00, 0x04, 0x08, 0x10, 0x11, 0x15, 0x1A, 0xF0, 0xF1, 0xF4, 0xF7])


TON_NAMES = {0: "unknown", 1: "international", 2: "national", 4: "subscriber", 5: "alphanumeric"}


def _oracle_text(data: dict[str, Any], expected: object) -> object:
    """The oracle's text. Its 7-bit decoder turns every whole septet of the user data octets
    into characters and then cuts by the septet count, so with an extension character (two
    septets, one character) a spare trailing septet shows as '@': that one is dropped."""
    text = data["user_data"]["data"]
    if (
        isinstance(text, str)
        and isinstance(expected, str)
        and text == expected + "@"
        and any(c in GSM.ALPHABET_EXT_INV for c in expected)
    ):
        return expected
    return text


def _payload(dcs: int, text: str, octets: bytes) -> tuple[str, bytes]:
    kind = alphabet(dcs)
    if kind == "8bit":
        return "", octets
    if kind == "ucs2":
        return text, b""
    return "".join(c for c in text if c in GSM_CHARS)[:150], b""


def _oracle_misreads_udh(udh: bytes, dcs: int) -> bool:
    """The oracle's 7-bit decoder also reads the UDH octets as characters before cutting them
    off by septet count; an ESC (0x1B) among those septets swallows the next one and shifts
    the text."""
    if alphabet(dcs) != "gsm7" or not udh:
        return False
    value = int.from_bytes(udh, "little")
    return any((value >> (7 * i)) & 0x7F == 0x1B for i in range((len(udh) * 8 + 6) // 7))


def _alnum_oracle_safe(address: Address) -> bool:
    # The oracle decodes every whole septet of the address octets: 7 septets leave a spare
    # septet that it reads as '@'.
    return address.ton != 5 or len(address.number) != 7


@ORACLE
@given(
    addresses,
    COMMON_DCS,
    any_text.map(lambda t: fit_units(t, 60)),
    st.binary(max_size=120),
    timestamps,
    smscs,
    st.none() | st.tuples(st.integers(0, 0xFFFF), st.integers(1, 255), st.integers(1, 255)),
)
def test_deliver_against_oracle(
    originator: Address,
    dcs: int,
    text: str,
    octets: bytes,
    when: datetime,
    smsc: Address | None,
    concat: tuple[int, int, int] | None,
) -> None:
    assume(_alnum_oracle_safe(originator))
    text, octets = _payload(dcs, text, octets)
    info = None if concat is None else Concat(concat[0], max(concat[1:]), min(concat[1:]))
    msg = SmsDeliver(originator, text, when, dcs=dcs, concat=info, user_data=octets, smsc=smsc)
    pdu = encode_deliver(msg)
    oracle = oracle_deliver(pdu)
    digits = originator.number if originator.ton == 5 else originator.number.translate(TO_ORACLE)
    assert oracle["sender"]["number"] == digits
    assert oracle["sender"]["toa"]["ton"] == TON_NAMES[originator.ton]
    assert oracle["scts"] == when
    assert oracle["header"]["mms"] is True
    expected: object = octets if alphabet(dcs) == "8bit" else text
    ours = decode_deliver(pdu)
    if not _oracle_misreads_udh(ours.udh, dcs):
        assert _oracle_text(oracle, expected) == expected
    if info is not None:
        element = oracle["user_data"]["header"]["elements"][0]["data"]
        assert (element["reference"], element["parts_count"], element["part_number"]) == (
            info.ref,
            info.total,
            info.seq,
        )
    if smsc is not None:
        assert oracle["smsc"]["number"] == smsc.number
    assert ours == dataclasses.replace(msg, udh=ours.udh)
    assert ours.concat == info
    assert (ours.udh == b"") == (info is None)


@ORACLE
@given(
    st.text(DIGITS, min_size=1, max_size=15),
    st.one_of(st.text(alphabet=GSM_CHARS, max_size=160), any_text.map(lambda t: fit_units(t, 70))),
    st.integers(0, 255),
    st.none() | st.integers(0, 63 * 7 * 24 * 60),
)
def test_submit_against_oracle(
    number: str, text: str, reference: int, validity: int | None
) -> None:
    dcs = 0 if all(c in GSM_CHARS for c in text) else 8
    msg = SmsSubmit(Address(number), text, reference, dcs=dcs, validity_minutes=validity)
    pdu = encode_submit(msg)
    oracle = oracle_submit(pdu)
    assert oracle["message-ref"] == reference
    assert oracle["recipient"]["number"] == number
    assert _oracle_text(oracle, text) == text
    assert oracle["header"]["vpf"] == (0 if validity is None else 2)
    if validity is not None:
        assert oracle["vp"] == pdu[7 + (len(number) + 1) // 2]


@ORACLE
@given(
    st.text(DIGITS, min_size=1, max_size=15),
    st.one_of(st.text(alphabet=GSM_CHARS, max_size=160), any_text.map(lambda t: fit_units(t, 70))),
    timestamps,
)
def test_oracle_built_pdus_decode(number: str, text: str, when: datetime) -> None:
    """PDUs assembled from the oracle's own field encoders (Number, Date, GSM, UCS2)."""
    ucs2 = any(c not in GSM_CHARS for c in text)
    if ucs2:
        ud = f"{len(text.encode('utf-16-be')):02X}" + UCS2.encode(text)
    else:
        septets = sum(2 if c in GSM.ALPHABET_EXT_INV else 1 for c in text)
        ud = f"{septets:02X}" + GSM.encode(text)
    pdu = "00" + "04" + f"{len(number):02X}91" + Number.encode(number)
    pdu += "00" + ("08" if ucs2 else "00") + Date.encode(when) + ud
    msg = decode_deliver(bytes.fromhex(pdu))
    assert (msg.originator, msg.text, msg.timestamp) == (Address(number), text, when)


# --------------------------------------------------------------------------------------------
# Fuzz: only TpduError may come out

DECODERS = [decode_deliver, decode_submit, decode_status_report, decode_mt]


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200), st.booleans())
def test_random_bytes_only_tpdu_error(data: bytes, with_smsc: bool) -> None:
    for decode in DECODERS:
        with contextlib.suppress(TpduError):
            decode(data, with_smsc=with_smsc)


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_mutated_pdus_only_tpdu_error(data: st.DataObject) -> None:
    seeds = [
        _valid_deliver(),
        encode_submit(SmsSubmit(SENDER, RUSSIAN, dcs=8, validity_minutes=600)),
        encode_status_report(SmsStatusReport(1, SENDER, WHEN, WHEN, 0x30)),
        bytes.fromhex("07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37"),
    ]
    pdu = bytearray(data.draw(st.sampled_from(seeds)))
    for _ in range(data.draw(st.integers(1, 4))):
        pdu[data.draw(st.integers(0, len(pdu) - 1))] = data.draw(st.integers(0, 255))
    for decode in DECODERS:
        with contextlib.suppress(TpduError):
            decode(bytes(pdu))
