"""Tests for smsc.text: SMPP 3.4 short_message text coding and splitting."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsc.text import (
    MAX_LISTED_ERRORS,
    DataCoding,
    DecodedText,
    TextEncodingError,
    alphabet_of,
    choose_coding,
    decode_text,
    encode_text,
    split_for_sms,
)

# TS 23.038 §6.2.1 default alphabet, written out independently of the gsm0338 package.
# Index = code; 0x1B (ESC) is a placeholder.
GSM_BASE = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# TS 23.038 §6.2.1.1 extension table.
GSM_EXTENSION = {
    0x0A: "\x0c",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}
GSM_CHARS = GSM_BASE.replace("\x1b", "") + "".join(GSM_EXTENSION.values())

RUSSIAN = "АБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯабвгдеёжзийклмнопрстуфхцчшщъыьэюя"
KAZAKH = "ӘәҒғҚқҢңӨөҰұҮүҺһІі"
KAZAKH_PHRASE = "Сіздің картаңыз бұғатталды, кодты айтыңыз"
RUSSIAN_PHRASE = "Ваша карта заблокирована"


def test_gsm_table_matches_ts_23_038() -> None:
    assert len(GSM_BASE) == 128
    for code, char in enumerate(GSM_BASE):
        if code == 0x1B:
            continue
        assert decode_text(bytes([code]), 0) == DecodedText(char, "gsm7"), hex(code)
        assert encode_text(char, 0) == bytes([code])
    for code, char in GSM_EXTENSION.items():
        assert decode_text(bytes([0x1B, code]), 0) == DecodedText(char, "gsm7"), hex(code)
        assert encode_text(char, 0) == bytes([0x1B, code])


@pytest.mark.parametrize(
    ("text", "data_coding", "expected"),
    [
        ("@", 0, "00"),
        ("€", 0, "1b 65"),
        ("{", 0, "1b 28"),
        ("Hi £5 [ok]", 0, "48 69 20 01 35 20 1b 3c 6f 6b 1b 3e"),
        ("Сәлем", 8, "04 21 04 d9 04 3b 04 35 04 3c"),
        ("😀", 8, "d8 3d de 00"),
        ("Hi", 1, "48 69"),
        ("café", 3, "63 61 66 e9"),
        ("Привет", 6, "bf e0 d8 d2 d5 e2"),
    ],
)
def test_encode_vectors(text: str, data_coding: int, expected: str) -> None:
    data = encode_text(text, data_coding)
    assert data == bytes.fromhex(expected)
    assert decode_text(data, data_coding) == DecodedText(text, alphabet_of(data_coding))


@pytest.mark.parametrize(
    "text",
    [KAZAKH_PHRASE, RUSSIAN_PHRASE, KAZAKH, RUSSIAN, "Қазақстан Республикасы", "ҮҰӨҢҚҒӘІҺ"],
)
def test_kazakh_and_russian_round_trip_ucs2(text: str) -> None:
    data = encode_text(text, DataCoding.UCS2)
    assert len(data) == 2 * len(text)
    assert decode_text(data, DataCoding.UCS2) == DecodedText(text, "ucs2")


def test_kazakh_letters_code_points() -> None:
    assert encode_text("әғқңөұүһі", 8) == bytes.fromhex(
        "04 d9 04 93 04 9b 04 a3 04 e9 04 b1 04 af 04 bb 04 56"
    )


def test_russian_round_trip_iso_8859_5() -> None:
    data = encode_text(RUSSIAN_PHRASE, DataCoding.CYRILLIC)
    assert len(data) == len(RUSSIAN_PHRASE)
    assert decode_text(data, DataCoding.CYRILLIC) == DecodedText(RUSSIAN_PHRASE, "cyrillic")


def test_kazakh_does_not_fit_iso_8859_5() -> None:
    with pytest.raises(TextEncodingError) as info:
        encode_text("Сәлем", DataCoding.CYRILLIC)
    assert info.value.char == "ә"
    assert info.value.position == 1
    assert info.value.data_coding == 6
    assert "'ә'" in str(info.value) and "position 1" in str(info.value)


@pytest.mark.parametrize(
    ("text", "data_coding", "char", "position"),
    [
        ("Сәлем", 0, "С", 0),
        ("abc€", 1, "€", 3),
        ("abc€", 3, "€", 3),
        ("ok\x1b", 0, "\x1b", 2),  # ESC is not a character of the alphabet
        ("ab\ud83d", 8, "\ud83d", 2),  # lone surrogate
        ("x😀", 0, "😀", 1),
    ],
)
def test_encode_rejects_unrepresentable(
    text: str, data_coding: int, char: str, position: int
) -> None:
    with pytest.raises(TextEncodingError) as info:
        encode_text(text, data_coding)
    assert (info.value.char, info.value.position) == (char, position)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("data_coding", [2, 4, 5, 7, 0xF4, 0x24])
def test_encode_binary_coding_is_an_error(data_coding: int) -> None:
    with pytest.raises(TextEncodingError, match="cannot carry text"):
        encode_text("hello", data_coding)


def test_encode_data_coding_not_an_octet() -> None:
    with pytest.raises(ValueError, match="not an octet"):
        encode_text("x", 256)


@pytest.mark.parametrize(
    ("data_coding", "alphabet"),
    [
        # SMPP 3.4 §5.2.19
        (0x00, "gsm7"),
        (0x01, "ascii"),
        (0x02, "binary"),
        (0x03, "latin1"),
        (0x04, "binary"),
        (0x05, "binary"),
        (0x06, "cyrillic"),
        (0x07, "binary"),
        (0x08, "ucs2"),
        (0x09, "binary"),
        (0x0A, "binary"),
        (0x0D, "binary"),
        (0x0E, "binary"),
        # SMPP reserved, read as TS 23.038 general group
        (0x0B, "ucs2"),
        (0x0C, "gsm7"),
        (0x0F, "gsm7"),
        # TS 23.038 general group with message class
        (0x10, "gsm7"),
        (0x11, "gsm7"),
        (0x13, "gsm7"),
        (0x14, "binary"),
        (0x16, "binary"),
        (0x18, "ucs2"),
        (0x1A, "ucs2"),
        (0x1C, "gsm7"),  # reserved alphabet -> GSM 7 bit
        # compressed
        (0x20, "binary"),
        (0x28, "binary"),
        (0x3F, "binary"),
        # automatic deletion group
        (0x40, "gsm7"),
        (0x44, "binary"),
        (0x48, "ucs2"),
        (0x51, "gsm7"),
        (0x60, "binary"),
        # reserved groups
        (0x80, "gsm7"),
        (0xBF, "gsm7"),
        # message waiting indication
        (0xC0, "gsm7"),
        (0xCF, "gsm7"),
        (0xD8, "gsm7"),
        (0xE0, "ucs2"),
        (0xEF, "ucs2"),
        # data coding / message class
        (0xF0, "gsm7"),
        (0xF1, "gsm7"),
        (0xF3, "gsm7"),
        (0xF4, "binary"),
        (0xF5, "binary"),
        (0xF7, "binary"),
        (0xF8, "gsm7"),
        (0xFB, "gsm7"),
        (0xFC, "binary"),
        (0xFF, "binary"),
    ],
)
def test_alphabet_of(data_coding: int, alphabet: str) -> None:
    assert alphabet_of(data_coding) == alphabet


def test_alphabet_of_every_octet_is_known() -> None:
    alphabets = {alphabet_of(dc) for dc in range(256)}
    assert alphabets == {"gsm7", "ascii", "latin1", "cyrillic", "ucs2", "binary"}


@pytest.mark.parametrize("data_coding", [-1, 256, 1 << 20])
def test_alphabet_of_rejects_non_octets(data_coding: int) -> None:
    with pytest.raises(ValueError, match="not an octet"):
        alphabet_of(data_coding)


def test_data_coding_enum_values() -> None:
    assert [int(dc) for dc in DataCoding] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0x0A, 0x0D, 0x0E]


@pytest.mark.parametrize(
    ("data", "data_coding", "expected"),
    [
        (b"\x00\x1b\x65", 0x11, DecodedText("@€", "gsm7")),
        (b"\x00\x1b\x65", 0xF0, DecodedText("@€", "gsm7")),
        (b"\x00\x1b\x65", 0xF4, DecodedText("", "binary")),
        (b"\x04\x21\x04\xd9", 0x18, DecodedText("Сә", "ucs2")),
        (b"\x04\x21\x04\xd9", 0xE1, DecodedText("Сә", "ucs2")),
        (b"\x04\x21\x04\xd9", 0x02, DecodedText("", "binary")),
        (b"\xff\xfe\x00", 0x04, DecodedText("", "binary")),
        (b"\xe9t\xe9", 0x03, DecodedText("été", "latin1")),
        (b"\xbf\xe0", 0x06, DecodedText("Пр", "cyrillic")),
        (b"@A", 0x01, DecodedText("@A", "ascii")),
        (b"\x00", 0x01, DecodedText("\x00", "ascii")),
        (b"", 0x00, DecodedText("", "gsm7")),
        (b"", 0x08, DecodedText("", "ucs2")),
        (b"\x82\xa0", 0x05, DecodedText("", "binary")),  # JIS: not decoded
    ],
)
def test_decode_branches(data: bytes, data_coding: int, expected: DecodedText) -> None:
    assert decode_text(data, data_coding) == expected


# ---- malformed input ----------------------------------------------------------------------


def test_decode_ucs2_odd_length() -> None:
    result = decode_text(bytes.fromhex("04 21 04 d9 04 3b 04"), 8)
    assert result == DecodedText("Сәл", "ucs2", ("ucs2: odd length 7, last byte dropped",))


def test_decode_ucs2_lone_surrogates() -> None:
    # high surrogate followed by a letter, then a lone low surrogate, then a good pair
    data = bytes.fromhex("d8 3d 00 41 de 00 d8 3d de 00")
    result = decode_text(data, 8)
    assert result.text == "\ufffdA\ufffd😀"
    assert result.errors == (
        "ucs2: lone surrogate 0xd83d at offset 0",
        "ucs2: lone surrogate 0xde00 at offset 4",
    )


def test_decode_ucs2_high_surrogate_at_end_with_odd_byte() -> None:
    result = decode_text(bytes.fromhex("00 41 d8 3d de"), 8)
    assert result.text == "A\ufffd"
    assert result.errors == (
        "ucs2: odd length 5, last byte dropped",
        "ucs2: lone surrogate 0xd83d at offset 2",
    )


def test_decode_gsm7_high_byte() -> None:
    result = decode_text(b"abc\x9bd", 0)
    assert result == DecodedText(
        "abc\ufffdd", "gsm7", ("gsm7: byte 0x9b outside 7-bit range at offset 3",)
    )


def test_decode_gsm7_lone_esc_at_end() -> None:
    result = decode_text(b"ab\x1b", 0)
    assert result == DecodedText("ab\ufffd", "gsm7", ("gsm7: lone ESC (0x1b) at end, offset 2",))


def test_decode_gsm7_esc_followed_by_high_byte() -> None:
    result = decode_text(b"\x1b\xe5x", 0)
    assert result.text == "\ufffdx"
    assert result.errors == ("gsm7: ESC followed by byte 0xe5 outside 7-bit range at offset 1",)


def test_decode_gsm7_esc_esc_is_space() -> None:
    result = decode_text(b"a\x1b\x1bb", 0)
    assert result.text == "a b"
    assert result.errors == ("gsm7: ESC ESC (reserved extension) at offset 1, shown as space",)


def test_decode_gsm7_undefined_extension_shows_base_character() -> None:
    result = decode_text(b"\x1b\x41\x1b\x00", 0)
    assert result.text == "A@"
    assert result.errors == (
        "gsm7: undefined extension 1b 41 at offset 0, shown as base character",
        "gsm7: undefined extension 1b 00 at offset 2, shown as base character",
    )


def test_decode_ascii_high_byte() -> None:
    result = decode_text(b"ok\xff", 1)
    assert result == DecodedText(
        "ok\ufffd", "ascii", ("ascii: byte 0xff outside 7-bit range at offset 2",)
    )


def test_decode_error_list_is_capped() -> None:
    result = decode_text(b"\xff" * 100, 0)
    assert result.text == "\ufffd" * 100
    assert len(result.errors) == MAX_LISTED_ERRORS + 1
    assert result.errors[0] == "gsm7: byte 0xff outside 7-bit range at offset 0"
    assert result.errors[-1] == f"gsm7: {100 - MAX_LISTED_ERRORS} more errors not listed"


@pytest.mark.parametrize("data_coding", [-1, 256, 1000])
def test_decode_bad_data_coding_does_not_raise(data_coding: int) -> None:
    result = decode_text(b"abc", data_coding)
    assert result.text == "" and result.alphabet == "binary"
    assert len(result.errors) == 1 and "not an octet" in result.errors[0]


def test_latin1_and_cyrillic_decode_every_byte_cleanly() -> None:
    data = bytes(range(256))
    for data_coding in (3, 6):
        result = decode_text(data, data_coding)
        assert len(result.text) == 256 and result.errors == ()


# ---- choose_coding --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        ("Hello {€} @ [x]|~^\\", 0),
        (GSM_CHARS, 0),
        ("Ваша карта", 8),
        ("Сәлем", 8),
        ("hi 😀", 8),
        ("ç", 8),  # lower-case c cedilla is not in the default table (Ç is)
        ("\x1b", 8),
        ("`", 8),
    ],
)
def test_choose_coding(text: str, expected: int) -> None:
    assert choose_coding(text) == expected


# ---- split_for_sms --------------------------------------------------------------------------


def _udh8(ref: int, total: int, seq: int) -> bytes:
    return bytes([5, 0, 3, ref, total, seq])


def _udh16(ref: int, total: int, seq: int) -> bytes:
    return bytes([6, 8, 4, ref >> 8, ref & 0xFF, total, seq])


def test_split_empty_text() -> None:
    assert split_for_sms("", ref=1) == (0, [b""])


def test_split_160_gsm_is_one_part_without_udh() -> None:
    text = "a" * 160
    assert split_for_sms(text, ref=7) == (0, [b"a" * 160])


def test_split_161_gsm_is_153_plus_8() -> None:
    text = "a" * 153 + "b" * 8
    coding, parts = split_for_sms(text, ref=7)
    assert coding == 0
    assert parts == [_udh8(7, 2, 1) + b"a" * 153, _udh8(7, 2, 2) + b"b" * 8]


def test_split_extension_chars_count_two_in_single_part() -> None:
    assert split_for_sms("a" * 158 + "€", ref=1) == (0, [b"a" * 158 + b"\x1b\x65"])
    coding, parts = split_for_sms("a" * 159 + "€", ref=1)
    assert coding == 0
    assert [len(p) for p in parts] == [6 + 153, 6 + 8]


def test_split_extension_char_at_153rd_position_moves_to_next_part() -> None:
    text = "a" * 152 + "€" + "b" * 10
    _, parts = split_for_sms(text, ref=3)
    assert parts == [
        _udh8(3, 2, 1) + b"a" * 152,
        _udh8(3, 2, 2) + b"\x1b\x65" + b"b" * 10,
    ]


def test_split_extension_char_ending_exactly_at_153() -> None:
    text = "a" * 151 + "€" + "b" * 10
    _, parts = split_for_sms(text, ref=3)
    assert parts == [_udh8(3, 2, 1) + b"a" * 151 + b"\x1b\x65", _udh8(3, 2, 2) + b"b" * 10]


def test_split_70_ucs2_is_one_part() -> None:
    text = "ә" * 70
    coding, parts = split_for_sms(text, ref=1)
    assert coding == 8
    assert parts == ["ә".encode("utf-16-be") * 70]


def test_split_71_ucs2_is_67_plus_4() -> None:
    text = "Қ" * 67 + "ж" * 4
    coding, parts = split_for_sms(text, ref=200)
    assert coding == 8
    assert parts == [
        _udh8(200, 2, 1) + "Қ".encode("utf-16-be") * 67,
        _udh8(200, 2, 2) + "ж".encode("utf-16-be") * 4,
    ]
    assert len(parts[0]) == 6 + 134


def test_split_never_splits_a_surrogate_pair() -> None:
    text = "ы" * 66 + "😀" + "ы" * 10
    _, parts = split_for_sms(text, ref=9)
    assert parts[0] == _udh8(9, 2, 1) + "ы".encode("utf-16-be") * 66
    assert parts[1] == _udh8(9, 2, 2) + "😀ыыыыыыыыыы".encode("utf-16-be")


def test_split_emoji_counts_two_units_in_single_part() -> None:
    assert len(split_for_sms("ы" * 68 + "😀", ref=1)[1]) == 1
    assert len(split_for_sms("ы" * 69 + "😀", ref=1)[1]) == 2


def test_split_ref16_gsm_uses_152_septets() -> None:
    text = "x" * 200
    coding, parts = split_for_sms(text, ref=0x1234, ref16=True)
    assert coding == 0
    assert parts == [_udh16(0x1234, 2, 1) + b"x" * 152, _udh16(0x1234, 2, 2) + b"x" * 48]


def test_split_ref16_ucs2_uses_66_units() -> None:
    text = "ү" * 140
    _, parts = split_for_sms(text, ref=0xBEEF, ref16=True)
    assert [len(p) - 7 for p in parts] == [132, 132, 16]
    assert parts[2][:7] == _udh16(0xBEEF, 3, 3)


def test_split_forced_ucs2_for_gsm_text() -> None:
    coding, parts = split_for_sms("hello", ref=1, data_coding=8)
    assert (coding, parts) == (8, ["hello".encode("utf-16-be")])


def test_split_8bit_alphabets_use_octet_limits() -> None:
    assert split_for_sms("é" * 140, ref=1, data_coding=3) == (3, [b"\xe9" * 140])
    _, parts = split_for_sms("Ж" * 141, ref=1, data_coding=6)
    assert parts == [_udh8(1, 2, 1) + b"\xb6" * 134, _udh8(1, 2, 2) + b"\xb6" * 7]
    _, parts = split_for_sms("a" * 141, ref=1, data_coding=1, ref16=True)
    assert [len(p) - 7 for p in parts] == [133, 8]


def test_split_many_parts_numbered() -> None:
    _, parts = split_for_sms("z" * (153 * 4 + 1), ref=255)
    assert [p[:6] for p in parts] == [_udh8(255, 5, seq) for seq in range(1, 6)]


@pytest.mark.parametrize(("ref", "ref16"), [(256, False), (-1, False), (0x10000, True)])
def test_split_ref_out_of_range(ref: int, ref16: bool) -> None:
    with pytest.raises(ValueError, match="ref"):
        split_for_sms("a" * 300, ref=ref, ref16=ref16)


def test_split_too_many_parts() -> None:
    with pytest.raises(ValueError, match="at most 255"):
        split_for_sms("a" * (153 * 255 + 1), ref=1)
    assert len(split_for_sms("a" * (153 * 255), ref=1)[1]) == 255


def test_split_unencodable_text_raises() -> None:
    with pytest.raises(TextEncodingError):
        split_for_sms("Сәлем", ref=1, data_coding=0)
    with pytest.raises(TextEncodingError):
        split_for_sms("hello", ref=1, data_coding=4)


# ---- properties -----------------------------------------------------------------------------


@given(st.binary(max_size=600), st.integers(min_value=0, max_value=255))
def test_decode_never_raises(data: bytes, data_coding: int) -> None:
    result = decode_text(data, data_coding)
    assert result.alphabet == alphabet_of(data_coding)
    if result.alphabet == "binary":
        assert result == DecodedText("", "binary")
    if "\ufffd" in result.text:
        assert result.errors
    assert all(isinstance(e, str) and e for e in result.errors)


@given(st.binary(max_size=40), st.integers())
def test_decode_never_raises_for_any_int(data: bytes, data_coding: int) -> None:
    assert isinstance(decode_text(data, data_coding), DecodedText)


gsm_text = st.text(alphabet=GSM_CHARS, max_size=400)
cyrillic_kazakh_text = st.text(alphabet=RUSSIAN + KAZAKH + " ,.!?-0123456789", max_size=300)


@given(gsm_text)
def test_gsm_round_trip(text: str) -> None:
    assert choose_coding(text) == 0
    assert decode_text(encode_text(text, 0), 0) == DecodedText(text, "gsm7")


@given(cyrillic_kazakh_text)
def test_cyrillic_kazakh_round_trip_ucs2(text: str) -> None:
    assert decode_text(encode_text(text, 8), 8) == DecodedText(text, "ucs2")
    assert choose_coding(text) == (0 if all(c in GSM_CHARS for c in text) else 8)


@given(st.text(alphabet=RUSSIAN + " ,.!?", max_size=200))
def test_russian_text_round_trip_iso_8859_5_property(text: str) -> None:
    assert decode_text(encode_text(text, 6), 6) == DecodedText(text, "cyrillic")


@given(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=300))
def test_any_text_round_trips_with_chosen_coding(text: str) -> None:
    coding = choose_coding(text)
    assert decode_text(encode_text(text, coding), coding).text == text


@given(
    st.one_of(
        gsm_text,
        cyrillic_kazakh_text,
        st.text(max_size=400).filter(lambda t: not any(0xD800 <= ord(c) <= 0xDFFF for c in t)),
    ),
    st.booleans(),
)
def test_split_parts_decode_cleanly_and_join_back(text: str, ref16: bool) -> None:
    coding, parts = split_for_sms(text, ref=42, ref16=ref16)
    if len(parts) == 1:
        payloads = parts
    else:
        header = 7 if ref16 else 6
        payloads = [p[header:] for p in parts]
        limit = {0: 152 if ref16 else 153, 8: 132 if ref16 else 134}[coding]
        assert all(len(p) <= limit for p in payloads)
        assert [p[header - 1] for p in parts] == list(range(1, len(parts) + 1))
    decoded = [decode_text(p, coding) for p in payloads]
    assert all(d.errors == () for d in decoded)  # no ESC or surrogate pair was split
    assert "".join(d.text for d in decoded) == text
