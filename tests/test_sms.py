"""Whole SMS from PDUs: UDH and SAR concatenation, message_payload, incomplete groups."""

from __future__ import annotations

from smsc.constants import EsmClass, Tag
from smsc.pdu import DeliverSm, Tlv
from smsc.sms import SmsAssembler
from smsc.text import split_for_sms

KAZ = (
    "Құрметті клиент! Сіздің Kaspi картаңыз бұғатталды. Бұғаттан шығару үшін "
    "kaspi-bank.kz-secure.com сілтемесіне өтіп, SMS кодты енгізіңіз. Әйтпесе шот жабылады."
)


def _parts(text: str, ref: int = 7) -> list[DeliverSm]:
    coding, bodies = split_for_sms(text, ref=ref)
    return [
        DeliverSm(
            source_addr="77011234567",
            destination_addr="77017654321",
            data_coding=coding,
            esm_class=EsmClass.UDHI if len(bodies) > 1 else 0,
            short_message=b,
        )
        for b in bodies
    ]


def test_single_part_is_whole_at_once() -> None:
    sms = SmsAssembler().feed(_parts("Купи хлеб")[0], now=0.0)
    assert sms is not None and sms.text == "Купи хлеб" and sms.complete and sms.alphabet == "ucs2"


def test_udh_parts_out_of_order_reassemble_to_the_kazakh_text() -> None:
    parts = _parts(KAZ)
    assert len(parts) == 3
    asm = SmsAssembler(timeout=10)
    assert asm.feed(parts[2], 0.0) is None
    assert asm.feed(parts[0], 0.1) is None
    sms = asm.feed(parts[1], 0.2)
    assert sms is not None and sms.text == KAZ and sms.complete and sms.total == 3
    assert len(sms.pdus) == 3 and asm.pending == 0


def test_missing_part_is_handed_on_incomplete_after_the_time_limit() -> None:
    parts = _parts(KAZ)
    asm = SmsAssembler(timeout=5)
    asm.feed(parts[0], 0.0)
    asm.feed(parts[2], 1.0)
    assert asm.handle_timer(4.9) == []
    (sms,) = asm.handle_timer(5.0)
    assert not sms.complete and sms.missing == (2,) and len(sms.pdus) == 2
    assert sms.text.startswith("Құрметті клиент!")
    assert any("incomplete: 2/3" in e for e in sms.errors)


def test_sar_tlvs_and_message_payload() -> None:
    body = "Ваша карта заблокирована".encode("utf-16-be")
    halves = [body[:24], body[24:]]
    asm = SmsAssembler()
    out = []
    for seq, half in enumerate(halves, 1):
        pdu = DeliverSm(source_addr="A", destination_addr="B", data_coding=8, short_message=half)
        pdu.tlvs += [
            Tlv.of(Tag.SAR_MSG_REF_NUM, 300),
            Tlv.of(Tag.SAR_TOTAL_SEGMENTS, 2),
            Tlv.of(Tag.SAR_SEGMENT_SEQNUM, seq),
        ]
        out.append(asm.feed(pdu, 0.0))
    assert out[0] is None and out[1] is not None
    assert out[1].text == "Ваша карта заблокирована"
    big = DeliverSm(data_coding=0, tlvs=[Tlv.of(Tag.MESSAGE_PAYLOAD, b"x" * 65000)])
    sms = asm.feed(big, 0.0)
    assert sms is not None and len(sms.text) == 65000


def test_broken_udh_is_an_error_not_a_crash() -> None:
    pdu = DeliverSm(esm_class=EsmClass.UDHI, short_message=b"\x09\x00\x03\x01", data_coding=0)
    sms = SmsAssembler().feed(pdu, 0.0)
    assert sms is not None and any("broken UDH" in e for e in sms.errors)


def test_same_reference_from_two_senders_is_not_mixed() -> None:
    asm = SmsAssembler()
    a, b = _parts(KAZ, ref=9), _parts(KAZ.upper(), ref=9)
    for p in b:
        p.source_addr = "77000000000"
    results = [asm.feed(p, 0.0) for pair in zip(a, b, strict=True) for p in pair]
    done = [r for r in results if r is not None]
    assert sorted(s.text for s in done) == sorted([KAZ, KAZ.upper()])


def test_receipt_text_shows_the_original_characters_as_ascii() -> None:
    from smsc.constants import MessageState
    from smsc.receipt import format_receipt, parse_receipt

    raw = format_receipt("00A1", MessageState.DELIVERED, 0, 0.0, 60.0, "Код 1234: Сәлем, бұл сынақ")
    assert raw.isascii()
    r = parse_receipt(raw.decode("ascii"))
    assert (r.message_id, r.stat, r.dlvrd, r.err) == ("00A1", "DELIVRD", "001", "000")
    assert r.text == "??? 1234: ?????, ???"  # 20 characters of the text, not 20 UCS2 octets


def test_gsm_text_labelled_ia5_is_read_as_gsm_when_the_peer_does_so() -> None:
    """osmo-msc 1.9 (and node smpp) hand GSM 03.38 septets over as data_coding 1: with
    `ia5_is_gsm` they read as GSM ('@' is 0x00, '_' 0x11, '€' ESC 0x65), concatenated too."""
    body = b"pay\x00kaspi\x11bonus.top \x1b\x6550 \x01\x02"
    pdu = DeliverSm(source_addr="77011234567", destination_addr="7701", data_coding=1,
                    short_message=body)  # fmt: skip
    gsm = SmsAssembler(ia5_is_gsm=True).feed(pdu, now=0.0)
    assert gsm is not None and gsm.text == "pay@kaspi_bonus.top €50 £$" and gsm.alphabet == "gsm7"
    ia5 = SmsAssembler().feed(pdu, now=0.0)
    assert ia5 is not None and ia5.text != gsm.text and "@" not in ia5.text
    # a long GSM text in two parts (8-bit UDH then septets), labelled IA5
    head = bytes([5, 0, 3, 9, 2, 1])
    parts = [
        DeliverSm(source_addr="77011234567", destination_addr="7701", data_coding=1,
                  esm_class=EsmClass.UDHI, short_message=head[:-1] + bytes([seq]) + chunk)
        for seq, chunk in ((1, b"a\x00b"), (2, b"\x11\x1b\x3c"))
    ]  # fmt: skip
    asm = SmsAssembler(ia5_is_gsm=True)
    assert asm.feed(parts[0], now=0.0) is None
    whole = asm.feed(parts[1], now=0.1)
    assert whole is not None and whole.text == "a@b_[" and whole.complete
