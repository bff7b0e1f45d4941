"""simulators.osmo.nas: TS 24.011 CP and RP layers, pure bytes.

The "osmo-msc" vectors are NAS containers seen on SGs with osmo-msc 1.9 in the lab; the TPDUs
inside are checked with the project's TS 23.040 codec.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gsm_probe.ts23040 import Address, SmsSubmit, decode_deliver, decode_submit, encode_submit
from simulators.osmo.nas import (
    CpFormatError,
    CpMessage,
    CpType,
    RpAck,
    RpData,
    RpError,
    RpFormatError,
    RpSmma,
    decode_cp,
    decode_rp,
    encode_cp,
    encode_rp,
)

# MO "после блокировки" from 4900001 to 4900002 (CP-DATA TI 1, RP-DATA MS->N, RP-DA 1000).
MO_CP_DATA = bytes.fromhex(
    "190133000100039101002b0101078194000"
    "0f2000820043f043e0441043b043500200431043b043e043a04"
    "380440043e0432043a0438"
)
# MT "снова работает" from 4900001: CP-DATA TI 1 flag 0, RP-DATA N->MS, RP-OA +447785016005.
MT_CP_DATA = bytes.fromhex(
    "19013901010791447758100650002d000780940000f10008621142304234001c0441043d043e04320430002004"
    "4004300431043e0442043004350442"
)


def test_osmo_msc_cp_ack_and_rp_ack() -> None:
    assert decode_cp(bytes.fromhex("8904")) == CpMessage(CpType.ACK, 0, True)
    assert encode_cp(CpMessage.ack(0, False)) == bytes.fromhex("0904")
    answer = decode_cp(bytes.fromhex("a901020309"))  # TI 2, network side, RP-ACK mr 9
    assert (answer.type, answer.ti, answer.ti_flag) == (CpType.DATA, 2, True)
    assert decode_rp(answer.user_data) == RpAck(9, uplink=False)
    assert encode_cp(CpMessage.data(0, True, encode_rp(RpAck(0)))) == bytes.fromhex("8901020200")


def test_mo_vector_encodes_byte_for_byte() -> None:
    tpdu = encode_submit(
        SmsSubmit(Address("4900002", 0, 1), "после блокировки", reference=1, dcs=8)
    )[1:]  # without the SMSC prefix
    rpdu = encode_rp(RpData(1, tpdu, uplink=True, destination=Address("1000", 1, 1)))
    assert encode_cp(CpMessage.data(1, False, rpdu)) == MO_CP_DATA
    rp = decode_rp(decode_cp(MO_CP_DATA).user_data)
    assert isinstance(rp, RpData) and rp.uplink and rp.originator is None
    assert rp.destination == Address("1000", 1, 1)
    assert decode_submit(rp.user_data, with_smsc=False).text == "после блокировки"


def test_mt_vector_decodes() -> None:
    cp = decode_cp(MT_CP_DATA)
    assert (cp.ti, cp.ti_flag, cp.type) == (1, False, CpType.DATA)
    rp = decode_rp(cp.user_data)
    assert isinstance(rp, RpData) and not rp.uplink and rp.reference == 1
    assert rp.originator == Address("447785016005", 1, 1)  # osmo-msc's built-in SMSC address
    assert rp.destination is None
    sms = decode_deliver(rp.user_data, with_smsc=False)
    assert sms.originator == Address("4900001", 0, 0)
    assert sms.text == "снова работает" and sms.dcs == 8
    assert sms.timestamp == datetime(2026, 11, 24, 3, 24, 43, tzinfo=UTC)
    assert sms.more_messages  # TP-MMS 0: osmo-msc had a second SMS queued
    assert encode_rp(rp) == cp.user_data


def test_rp_error_with_cause_diagnostic_and_user_data() -> None:
    raw = encode_rp(RpError(7, 22, uplink=True, diagnostic=b"\x01", user_data=b"\x00\x00"))
    assert raw == bytes.fromhex("040702160141020000")
    assert decode_rp(raw) == RpError(7, 22, True, b"\x01", b"\x00\x00")
    assert decode_rp(bytes.fromhex("05030126")) == RpError(3, 38, uplink=False)  # network, 38
    assert encode_rp(RpSmma(5)) == bytes.fromhex("0605")
    assert decode_rp(bytes.fromhex("0605")) == RpSmma(5)
    assert encode_cp(CpMessage.error(3, True, 81)) == bytes.fromhex("B91051")
    assert decode_cp(bytes.fromhex("b91051")) == CpMessage(CpType.ERROR, 3, True, cause=81)


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"\x09", "at least 2"),
        (bytes.fromhex("0304"), "not 9"),
        (bytes.fromhex("0902"), "unknown CP message type"),
        (bytes.fromhex("0901"), "without CP-User data"),
        (bytes.fromhex("090105aabb"), "runs past the end"),
        (bytes.fromhex("0910"), "without CP-Cause"),
    ],
)
def test_malformed_cp(raw: bytes, match: str) -> None:
    with pytest.raises(CpFormatError, match=match):
        decode_cp(raw)


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"", "RP-MTI"),
        (bytes.fromhex("07"), "RP-Message Reference"),
        (bytes.fromhex("0701"), "reserved RP-MTI 7"),
        (bytes.fromhex("050100"), "length 0"),
        (bytes.fromhex("0001000391"), "RP-Destination address: 3 octets needed"),
        (bytes.fromhex("03014201aa"), "0x41"),
        (bytes.fromhex("0301ff"), "unexpected IEI 0xff"),
        (bytes.fromhex("030141"), "RP-User data length"),
        (bytes.fromhex("0001000003aabbccdd"), "after the RP message"),
        (bytes.fromhex("010103911f00000100"), "filler"),
    ],
)
def test_malformed_rp(raw: bytes, match: str) -> None:
    with pytest.raises(RpFormatError, match=match):
        decode_rp(raw)


def test_encoding_limits() -> None:
    with pytest.raises(CpFormatError, match="TI 8"):
        encode_cp(CpMessage.ack(8, False))
    with pytest.raises(RpFormatError, match="not an octet"):
        encode_rp(RpAck(256))
    with pytest.raises(RpFormatError, match="BCD"):
        encode_rp(RpData(1, b"", destination=Address("12x", 1, 1)))
    with pytest.raises(RpFormatError, match=r"0\.\.127"):
        encode_rp(RpError(1, 200))


_addresses = st.none() | st.builds(
    Address, st.from_regex(r"[0-9]{1,20}", fullmatch=True), st.integers(0, 7), st.integers(0, 15)
)


@given(
    st.integers(0, 255),
    st.binary(max_size=200),
    st.booleans(),
    _addresses,
    _addresses,
)
def test_rp_data_round_trip(
    ref: int, ud: bytes, uplink: bool, oa: Address | None, da: Address | None
) -> None:
    msg = RpData(ref, ud, uplink, oa, da)
    assert decode_rp(encode_rp(msg)) == msg


@given(
    st.sampled_from(list(CpType)),
    st.integers(0, 7),
    st.booleans(),
    st.binary(max_size=250),
    st.integers(0, 255),
)
def test_cp_round_trip(kind: CpType, ti: int, flag: bool, ud: bytes, cause: int) -> None:
    msg = CpMessage(
        kind,
        ti,
        flag,
        ud if kind == CpType.DATA else b"",
        cause if kind == CpType.ERROR else 0,
    )
    assert decode_cp(encode_cp(msg)) == msg


@given(st.binary(max_size=60))
def test_random_bytes_raise_only_format_errors(data: bytes) -> None:
    for decoder in (decode_cp, decode_rp):
        with contextlib.suppress(CpFormatError, RpFormatError):
            decoder(data)
