"""SMPP 3.4 ``short_message`` text: decoding, encoding and splitting (sans-I/O).

Which alphabet a ``data_coding`` value selects is decided by :func:`alphabet_of`, following
SMPP 3.4 §5.2.19 (``data_coding``) for the SMPP-defined values 0x00-0x0E and 3GPP TS 23.038 §4
(SMS Data Coding Scheme) for the rest.

The SMSC default alphabet (``data_coding`` 0) is taken to be the GSM 03.38 default alphabet with
its extension table, carried *unpacked* (one septet per octet) as SMPP does; an extension
character travels as ESC (0x1B) followed by its code.

:func:`decode_text` never raises: a fraud gateway has to score garbage, not crash on it.
Undecodable parts become U+FFFD and a human-readable reason is added to
:attr:`DecodedText.errors`.
"""

from __future__ import annotations

import codecs
import contextlib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

# Importing gsm0338 registers the "gsm03.38" codec; it ships no type information, hence the
# indirect import. The codec is only used to build the tables below, so that the project has a
# single source for the GSM 03.38 character set.
importlib.import_module("gsm0338")

__all__ = [
    "DataCoding",
    "DecodedText",
    "TextEncodingError",
    "alphabet_of",
    "choose_coding",
    "decode_text",
    "encode_text",
    "split_for_sms",
]

ALPHABETS: Final = ("gsm7", "ascii", "latin1", "cyrillic", "ucs2", "binary")

REPLACEMENT: Final = "\ufffd"
ESC: Final = 0x1B

#: At most this many reasons are listed in :attr:`DecodedText.errors`; past it one summary line
#: says how many more there were (a 40 kB garbage message must not make 40 000 strings).
MAX_LISTED_ERRORS: Final = 16


class DataCoding(IntEnum):
    """``data_coding`` values defined by SMPP 3.4 §5.2.19."""

    DEFAULT = 0x00  # SMSC default alphabet: GSM 03.38, unpacked
    IA5 = 0x01  # IA5 (CCITT T.50) / ASCII (ANSI X3.4)
    OCTET_2 = 0x02  # octet unspecified (8-bit binary)
    LATIN1 = 0x03  # ISO-8859-1
    OCTET = 0x04  # octet unspecified (8-bit binary)
    JIS = 0x05  # JIS (X 0208-1990)
    CYRILLIC = 0x06  # ISO-8859-5
    HEBREW = 0x07  # ISO-8859-8
    UCS2 = 0x08  # UCS2 (ISO/IEC-10646); handled as UTF-16BE
    PICTOGRAM = 0x09  # pictogram encoding
    ISO2022JP = 0x0A  # ISO-2022-JP (music codes)
    KANJI = 0x0D  # extended Kanji JIS (X 0212-1990)
    KSC5601 = 0x0E  # KS C 5601


# --------------------------------------------------------------------------------------------
# data_coding -> alphabet
# --------------------------------------------------------------------------------------------

# SMPP 3.4 §5.2.19 values. The Japanese, Korean, Hebrew and pictogram codings are not decoded
# by this gateway: they map to "binary" (no text). 0x0B, 0x0C and 0x0F are reserved in SMPP and
# fall through to the TS 23.038 general data coding group below.
_SMPP_ALPHABETS: Final[dict[int, str]] = {
    DataCoding.DEFAULT: "gsm7",
    DataCoding.IA5: "ascii",
    DataCoding.OCTET_2: "binary",
    DataCoding.LATIN1: "latin1",
    DataCoding.OCTET: "binary",
    DataCoding.JIS: "binary",
    DataCoding.CYRILLIC: "cyrillic",
    DataCoding.HEBREW: "binary",
    DataCoding.UCS2: "ucs2",
    DataCoding.PICTOGRAM: "binary",
    DataCoding.ISO2022JP: "binary",
    DataCoding.KANJI: "binary",
    DataCoding.KSC5601: "binary",
}

# TS 23.038 §4 character set bits (bits 3..2) of the general data coding groups.
# 11 is reserved, and "any reserved codings shall be assumed to be the GSM 7 bit default
# alphabet" (TS 23.038 §4).
_GENERAL_ALPHABETS: Final = ("gsm7", "binary", "ucs2", "gsm7")


def alphabet_of(data_coding: int) -> str:
    """Return the alphabet ``data_coding`` selects.

    One of ``"gsm7"``, ``"ascii"``, ``"latin1"``, ``"cyrillic"``, ``"ucs2"``, ``"binary"``.

    ============  =========================================================  ===============
    value         meaning (source)                                           alphabet
    ============  =========================================================  ===============
    0x00          SMSC default alphabet (SMPP 3.4 §5.2.19)                   gsm7
    0x01          IA5 / ASCII (SMPP)                                         ascii
    0x02, 0x04    octet unspecified (SMPP)                                   binary
    0x03          Latin 1, ISO-8859-1 (SMPP)                                 latin1
    0x06          Cyrillic, ISO-8859-5 (SMPP)                                cyrillic
    0x08          UCS2 (SMPP), taken as UTF-16BE                             ucs2
    0x05, 0x07,   JIS, Hebrew, pictogram, ISO-2022-JP, Kanji, KS C 5601      binary
    0x09, 0x0A,   (SMPP): not decoded by this gateway
    0x0D, 0x0E
    0x0B, 0x0C,   reserved in SMPP; read as the TS 23.038 §4 general         0x0B ucs2,
    0x0F          data coding group (bits 3..2 = character set)              else gsm7
    0x10-0x1F     TS 23.038 general group, uncompressed, message class       by bits 3..2
                  in bits 1..0: 00 GSM 7 bit, 01 8-bit data, 10 UCS2,
                  11 reserved (= GSM 7 bit)
    0x20-0x3F     TS 23.038 general group, compressed (TS 23.042)            binary
    0x40-0x7F     TS 23.038 "marked for automatic deletion" group: bit 5     like 0x00-0x3F
                  compressed, bits 3..2 character set as in the general      (23.038 only)
                  group
    0x80-0xBF     TS 23.038 reserved coding groups (= GSM 7 bit)             gsm7
    0xC0-0xDF     TS 23.038 message waiting indication, discard/store        gsm7
                  (SMPP "GSM MWI control")
    0xE0-0xEF     TS 23.038 message waiting indication, store, UCS2          ucs2
                  (reserved in SMPP 3.4; 23.038 is followed)
    0xF0-0xFF     TS 23.038 data coding / message class group (SMPP "GSM     bit 2 set:
                  message class control"): bit 2 = message coding            binary, clear:
                                                                             gsm7
    ============  =========================================================  ===============

    Raises ValueError if ``data_coding`` is not an octet (0..255).
    """
    if not 0 <= data_coding <= 0xFF:
        raise ValueError(f"data_coding {data_coding} is not an octet (0..255)")
    smpp = _SMPP_ALPHABETS.get(data_coding)
    if smpp is not None:
        return smpp
    group = data_coding >> 4
    if group <= 0x7:  # 00xx general data coding, 01xx marked for automatic deletion
        if data_coding & 0x20:  # bit 5: text compressed (TS 23.042); we do not decompress
            return "binary"
        return _GENERAL_ALPHABETS[(data_coding >> 2) & 0x3]
    if group <= 0xB:  # 1000..1011: reserved coding groups
        return "gsm7"
    if group <= 0xD:  # 1100 MWI discard, 1101 MWI store: GSM 7 bit
        return "gsm7"
    if group == 0xE:  # 1110 MWI store: UCS2
        return "ucs2"
    # 1111: data coding / message class; bit 3 reserved, bit 2 message coding
    return "binary" if data_coding & 0x04 else "gsm7"


# --------------------------------------------------------------------------------------------
# GSM 03.38 tables (built from the gsm0338 codec)
# --------------------------------------------------------------------------------------------


def _build_gsm_tables() -> tuple[tuple[str, ...], dict[int, str], dict[str, bytes]]:
    base: list[str] = []
    for code in range(0x80):
        if code == ESC:
            base.append(REPLACEMENT)  # never looked up: ESC is handled by the decoder
            continue
        base.append(codecs.decode(bytes((code,)), "gsm03.38"))
    extension: dict[int, str] = {}
    for code in range(0x80):
        if code == ESC:
            continue
        with contextlib.suppress(UnicodeDecodeError):
            extension[code] = codecs.decode(bytes((ESC, code)), "gsm03.38")
    encode: dict[str, bytes] = {}
    for code, char in enumerate(base):
        if code != ESC:
            encode.setdefault(char, bytes((code,)))
    for code, char in extension.items():
        encode.setdefault(char, bytes((ESC, code)))
    return tuple(base), extension, encode


_GSM_BASE, _GSM_EXTENSION, _GSM_ENCODE = _build_gsm_tables()


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DecodedText:
    """Result of :func:`decode_text`.

    ``errors`` is empty when decoding was clean; otherwise it holds human-readable reasons and
    the undecodable parts of ``text`` are U+FFFD.
    """

    text: str
    alphabet: str
    errors: tuple[str, ...] = ()


class _Errors:
    """Collects decoding reasons, listing at most MAX_LISTED_ERRORS of them."""

    __slots__ = ("_count", "_listed", "_prefix")

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._listed: list[str] = []
        self._count = 0

    def add(self, reason: str) -> None:
        self._count += 1
        if len(self._listed) < MAX_LISTED_ERRORS:
            self._listed.append(f"{self._prefix}: {reason}")

    def result(self) -> tuple[str, ...]:
        more = self._count - len(self._listed)
        if more:
            return (*self._listed, f"{self._prefix}: {more} more errors not listed")
        return tuple(self._listed)


def _decode_gsm7(data: bytes) -> DecodedText:
    out: list[str] = []
    errors = _Errors("gsm7")
    size = len(data)
    i = 0
    while i < size:
        byte = data[i]
        if byte >= 0x80:
            out.append(REPLACEMENT)
            errors.add(f"byte 0x{byte:02x} outside 7-bit range at offset {i}")
            i += 1
            continue
        if byte != ESC:
            out.append(_GSM_BASE[byte])
            i += 1
            continue
        if i + 1 >= size:
            out.append(REPLACEMENT)
            errors.add(f"lone ESC (0x1b) at end, offset {i}")
            i += 1
            continue
        code = data[i + 1]
        if code >= 0x80:
            out.append(REPLACEMENT)
            errors.add(f"ESC followed by byte 0x{code:02x} outside 7-bit range at offset {i + 1}")
        elif code == ESC:
            # TS 23.038 §6.2.1.1: 1B 1B is reserved for another extension table; a receiving
            # entity shall display a space.
            out.append(" ")
            errors.add(f"ESC ESC (reserved extension) at offset {i}, shown as space")
        elif code in _GSM_EXTENSION:
            out.append(_GSM_EXTENSION[code])
        else:
            # TS 23.038 §6.2.1.1: a code missing from the extension table is displayed as the
            # character of the default alphabet table.
            out.append(_GSM_BASE[code])
            errors.add(f"undefined extension 1b {code:02x} at offset {i}, shown as base character")
        i += 2
    return DecodedText("".join(out), "gsm7", errors.result())


def _decode_ascii(data: bytes) -> DecodedText:
    if data.isascii():
        return DecodedText(data.decode("ascii"), "ascii")
    out: list[str] = []
    errors = _Errors("ascii")
    for offset, byte in enumerate(data):
        if byte < 0x80:
            out.append(chr(byte))
        else:
            out.append(REPLACEMENT)
            errors.add(f"byte 0x{byte:02x} outside 7-bit range at offset {offset}")
    return DecodedText("".join(out), "ascii", errors.result())


def _decode_ucs2(data: bytes) -> DecodedText:
    if len(data) % 2 == 0:
        try:
            return DecodedText(data.decode("utf-16-be"), "ucs2")
        except UnicodeDecodeError:
            pass  # lone surrogate somewhere: take the slow path
    errors = _Errors("ucs2")
    size = len(data)
    if size % 2:
        errors.add(f"odd length {size}, last byte dropped")
        size -= 1
    out: list[str] = []
    i = 0
    while i < size:
        unit = (data[i] << 8) | data[i + 1]
        if 0xD800 <= unit <= 0xDBFF and i + 2 < size:
            low = (data[i + 2] << 8) | data[i + 3]
            if 0xDC00 <= low <= 0xDFFF:
                out.append(chr(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)))
                i += 4
                continue
        if 0xD800 <= unit <= 0xDFFF:
            out.append(REPLACEMENT)
            errors.add(f"lone surrogate 0x{unit:04x} at offset {i}")
        else:
            out.append(chr(unit))
        i += 2
    return DecodedText("".join(out), "ucs2", errors.result())


def _single_byte(codec: str, alphabet: str) -> Callable[[bytes], DecodedText]:
    def decode(data: bytes) -> DecodedText:
        # ISO-8859-1 and ISO-8859-5 map all 256 octets; "replace" is a safety net only.
        text = data.decode(codec, errors="replace")
        errors: tuple[str, ...] = ()
        if REPLACEMENT in text:
            errors = (f"{alphabet}: undecodable bytes replaced",)
        return DecodedText(text, alphabet, errors)

    return decode


def _decode_binary(data: bytes) -> DecodedText:
    return DecodedText("", "binary")


_DECODERS: Final[dict[str, Callable[[bytes], DecodedText]]] = {
    "gsm7": _decode_gsm7,
    "ascii": _decode_ascii,
    "latin1": _single_byte("latin-1", "latin1"),
    "cyrillic": _single_byte("iso8859_5", "cyrillic"),
    "ucs2": _decode_ucs2,
    "binary": _decode_binary,
}


def decode_text(data: bytes, data_coding: int) -> DecodedText:
    """Decode a ``short_message`` (or ``message_payload``) body; never raises.

    ``data`` must not include a UDH (strip it with :func:`smsc.concat.parse_udh` first).
    For a binary coding the text is ``""`` with no error. A ``data_coding`` outside 0..255 is
    treated as binary and reported in ``errors``.
    """
    try:
        alphabet = alphabet_of(data_coding)
    except (ValueError, TypeError):
        return DecodedText("", "binary", (f"data_coding {data_coding!r} is not an octet",))
    try:
        return _DECODERS[alphabet](bytes(data))
    except Exception as exc:  # pragma: no cover - defensive: decoding must never raise
        return DecodedText("", alphabet, (f"{alphabet}: decoder failed: {exc!r}",))


# --------------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------------


class TextEncodingError(ValueError):
    """A character cannot be carried by the requested ``data_coding``.

    ``char`` and ``position`` (index in the Python string, i.e. in code points) name the first
    offending character; both are None when the coding cannot carry text at all.
    """

    def __init__(
        self,
        message: str,
        *,
        data_coding: int,
        char: str | None = None,
        position: int | None = None,
    ) -> None:
        super().__init__(message)
        self.data_coding = data_coding
        self.char = char
        self.position = position


def _unencodable(text: str, position: int, data_coding: int, alphabet: str) -> TextEncodingError:
    char = text[position]
    return TextEncodingError(
        f"character {char!r} (U+{ord(char):04X}) at position {position} cannot be encoded in "
        f"{alphabet} (data_coding 0x{data_coding:02x})",
        data_coding=data_coding,
        char=char,
        position=position,
    )


def _encode_pieces(text: str, data_coding: int) -> tuple[str, list[bytes]]:
    """Encode ``text`` one character at a time: (alphabet, one bytes object per character)."""
    alphabet = alphabet_of(data_coding)
    pieces: list[bytes] = []
    if alphabet == "gsm7":
        for position, char in enumerate(text):
            encoded = _GSM_ENCODE.get(char)
            if encoded is None:
                raise _unencodable(text, position, data_coding, alphabet)
            pieces.append(encoded)
        return alphabet, pieces
    codec = {
        "ascii": "ascii",
        "latin1": "latin-1",
        "cyrillic": "iso8859_5",
        "ucs2": "utf-16-be",
    }.get(alphabet)
    if codec is None:
        raise TextEncodingError(
            f"data_coding 0x{data_coding:02x} is {alphabet}: it cannot carry text",
            data_coding=data_coding,
        )
    try:
        whole = text.encode(codec)
    except UnicodeEncodeError as exc:
        raise _unencodable(text, exc.start, data_coding, alphabet) from None
    if alphabet != "ucs2":
        return alphabet, [whole[i : i + 1] for i in range(len(whole))]
    i = 0
    for char in text:
        width = 4 if ord(char) > 0xFFFF else 2  # a surrogate pair stays in one piece
        pieces.append(whole[i : i + width])
        i += width
    return alphabet, pieces


def encode_text(text: str, data_coding: int) -> bytes:
    """Encode ``text`` for ``data_coding`` (GSM 03.38 unpacked for the default alphabet).

    Raises :class:`TextEncodingError` naming the first character (and its position) that the
    alphabet cannot hold, or when ``data_coding`` is binary; ValueError if ``data_coding`` is
    not an octet. For UCS2 (UTF-16BE) characters beyond U+FFFF become surrogate pairs; a lone
    surrogate in ``text`` is an error.
    """
    return b"".join(_encode_pieces(text, data_coding)[1])


def choose_coding(text: str) -> int:
    """0 (GSM 03.38 default alphabet) if every character fits it, extension included, else 8."""
    gsm = _GSM_ENCODE
    return DataCoding.DEFAULT if all(char in gsm for char in text) else DataCoding.UCS2


# --------------------------------------------------------------------------------------------
# Splitting (TS 23.040 §9.2.3.24.1 / .24.8 concatenation)
# --------------------------------------------------------------------------------------------

# (single message, per part with the 6-octet IEI 0x00 UDH, per part with the 7-octet IEI 0x08
# UDH), in octets of the SMPP short_message body. GSM 7-bit is unpacked, so octets = septets:
# 160 septets single; 140 octets - 6 = 134 octets = 153 septets (1 fill bit) ; 140 - 7 = 133
# octets = 152 septets.
_LIMITS: Final[dict[str, tuple[int, int, int]]] = {
    "gsm7": (160, 153, 152),
    "ucs2": (140, 134, 132),  # 70 / 67 / 66 UTF-16 code units (132: 133 rounded to even)
    "ascii": (140, 134, 133),
    "latin1": (140, 134, 133),
    "cyrillic": (140, 134, 133),
}


def split_for_sms(
    text: str, *, ref: int, data_coding: int | None = None, ref16: bool = False
) -> tuple[int, list[bytes]]:
    """Split ``text`` into ``short_message`` bodies for sending.

    Returns ``(data_coding, bodies)``. ``data_coding`` defaults to :func:`choose_coding`.
    A text that fits one message (160 GSM septets, 70 UCS2 code units, 140 octets for the
    8-bit alphabets) is one body without UDH (set no UDHI). Otherwise every body starts with a
    concatenation UDH (IEI 0x00 with the 8-bit ``ref``, or IEI 0x08 with the 16-bit ``ref``
    when ``ref16``) and the caller must set UDHI (esm_class 0x40). Per part: 153 / 152 GSM
    septets (an extension character counts 2 and is never separated from its ESC),
    67 / 66 UCS2 code units (a surrogate pair is never split), 134 / 133 octets for IA5,
    Latin-1 and Cyrillic (these are counted as octets, which is safe only if the SMSC sends
    them as 8-bit; it is the caller's choice to use them).

    Raises :class:`TextEncodingError` if the text does not fit the coding (or the coding is
    binary) and ValueError if ``ref`` is out of range or more than 255 parts would be needed.
    """
    if not 0 <= ref <= (0xFFFF if ref16 else 0xFF):
        bits = 16 if ref16 else 8
        raise ValueError(f"{bits}-bit concatenation ref {ref} out of range 0..{(1 << bits) - 1}")
    coding = choose_coding(text) if data_coding is None else data_coding
    alphabet, pieces = _encode_pieces(text, coding)
    single, per_part8, per_part16 = _LIMITS[alphabet]
    body = b"".join(pieces)
    if len(body) <= single:
        return coding, [body]

    limit = per_part16 if ref16 else per_part8
    chunks: list[bytes] = []
    current: list[bytes] = []
    used = 0
    for piece in pieces:
        if used + len(piece) > limit:
            chunks.append(b"".join(current))
            current, used = [], 0
        current.append(piece)
        used += len(piece)
    chunks.append(b"".join(current))

    total = len(chunks)
    if total > 255:
        raise ValueError(f"text needs {total} parts; concatenation allows at most 255")
    header = (
        bytes((6, 0x08, 4, ref >> 8, ref & 0xFF, total))  # UDHL 6, IEI 0x08, IEDL 4
        if ref16
        else bytes((5, 0x00, 3, ref, total))  # UDHL 5, IEI 0x00, IEDL 3
    )
    return coding, [header + bytes((seq,)) + chunk for seq, chunk in enumerate(chunks, 1)]
