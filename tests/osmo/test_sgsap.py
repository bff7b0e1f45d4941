"""simulators.osmo.sgsap: SGsAP codec and TCP framing (TS 29.118), pure bytes.

Byte vectors marked "osmo-msc" were captured from osmo-msc 1.9 in the lab (LAB-NOTES "Virtual
phones over SGs"); the others are built from TS 24.008 §10.5.1.3 / §10.5.1.4 by hand.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.osmo import sgsap
from simulators.osmo.mme import DEFAULT_MME_NAME
from simulators.osmo.sgsap import (
    MESSAGES,
    Framer,
    Iei,
    Lai,
    Message,
    MsgType,
    SgsapError,
    decode,
    split,
)

IMSI1 = "001010000000001"
# osmo-msc -> MME, captured in the lab
LU_ACCEPT = bytes.fromhex("0a01080910100000000010040500f11000010e05f4299ce82d")
LU_REJECT = bytes.fromhex("0b010809101000000000990f0103040500f1100001")
PAGING = bytes.fromhex(
    "0101080910100000000020021203766c7209667261756467617465036c6162200102040500f1100001"
)
DL_CP_ACK = bytes.fromhex("070108091010000000001016028904")
RELEASE_CAUSE = bytes.fromhex("1b01080910100000000010080103")
RELEASE = bytes.fromhex("1b01080910100000000010")
MME_NAME_LABELS = bytes.fromhex(
    "066d6d65633031096d6d65676930303031036d6d6503657063066d6e63303031066d63633030310b336770"
    "706e6574776f726b036f7267"
)


def test_imsi_vectors() -> None:
    assert sgsap.encode_imsi(IMSI1) == bytes.fromhex("0910100000000010")  # odd: flag 0x08
    assert sgsap.encode_imsi("00101000000001") == bytes.fromhex("01101000000000f1")
    assert sgsap.decode_imsi(bytes.fromhex("0910100000000010")) == IMSI1
    assert sgsap.decode_imsi(bytes.fromhex("01101000000000f1")) == "00101000000001"
    assert sgsap.decode_imsi(sgsap.encode_imsi("401770123456789")) == "401770123456789"


def test_tmsi_and_identity_kinds() -> None:
    assert sgsap.encode_tmsi(0x299CE82D) == bytes.fromhex("f4299ce82d")
    assert sgsap.decode_mobile_identity(bytes.fromhex("f4299ce82d")) == ("tmsi", 0x299CE82D)
    with pytest.raises(SgsapError, match="not an IMSI"):
        sgsap.decode_imsi(bytes.fromhex("f4299ce82d"))
    with pytest.raises(SgsapError, match="5"):
        sgsap.decode_mobile_identity(bytes.fromhex("f4299c"))
    with pytest.raises(SgsapError, match="filler"):
        sgsap.decode_imsi(bytes.fromhex("0110100000000011"))  # even count, no F filler
    with pytest.raises(SgsapError, match="6 to 15"):
        sgsap.encode_imsi("0010100000000012")


def test_lai_vectors() -> None:
    assert sgsap.encode_lai(Lai("001", "01", 1)) == bytes.fromhex("00f1100001")  # osmo-msc
    assert sgsap.encode_lai(Lai("401", "01", 0x1234)) == bytes.fromhex("04f1101234")
    assert sgsap.encode_lai(Lai("310", "410", 7)) == bytes.fromhex("1300140007")  # 3-digit MNC
    for lai in (Lai("001", "01", 1), Lai("401", "77", 65535), Lai("310", "410", 0)):
        assert sgsap.decode_lai(sgsap.encode_lai(lai)) == lai
    with pytest.raises(SgsapError, match="5"):
        sgsap.decode_lai(b"\x00\xf1\x10")
    with pytest.raises(SgsapError):
        sgsap.encode_lai(Lai("01", "01", 1))


def test_dns_names() -> None:
    assert sgsap.encode_dns_name(DEFAULT_MME_NAME) == MME_NAME_LABELS
    assert len(MME_NAME_LABELS) == 55  # osmo-msc wants at least 55 octets (SGS_MME_NAME_LEN)
    assert sgsap.decode_dns_name(MME_NAME_LABELS) == DEFAULT_MME_NAME
    vlr = bytes.fromhex("03766c7209667261756467617465036c6162")  # osmo-msc's VLR name IE
    assert sgsap.decode_dns_name(vlr) == "vlr.fraudgate.lab"
    assert sgsap.decode_dns_name(b"vlr.example.net") == "vlr.example.net"  # dotted text as is
    with pytest.raises(SgsapError, match="label"):
        sgsap.encode_dns_name("a..b")


def test_decode_osmo_msc_messages() -> None:
    accept = decode(LU_ACCEPT)
    assert accept.type is MsgType.LOCATION_UPDATE_ACCEPT
    assert accept.imsi == IMSI1
    assert sgsap.decode_lai(accept.require(Iei.LAI)) == Lai("001", "01", 1)
    assert sgsap.decode_mobile_identity(accept.require(Iei.MOBILE_IDENTITY)) == (
        "tmsi",
        0x299CE82D,
    )
    paging = decode(PAGING)
    assert paging.type is MsgType.PAGING_REQ
    assert paging.imsi == "001010000000002"
    assert paging.octet(Iei.SERVICE_INDICATOR) == sgsap.ServiceIndicator.SMS
    assert sgsap.decode_dns_name(paging.require(Iei.VLR_NAME)) == "vlr.fraudgate.lab"
    assert decode(RELEASE_CAUSE).octet(Iei.SGS_CAUSE) == sgsap.SgsCause.IMSI_UNKNOWN
    assert decode(RELEASE).octet(Iei.SGS_CAUSE) is None
    assert decode(LU_REJECT).octet(Iei.REJECT_CAUSE) == 3
    for raw in (LU_ACCEPT, PAGING, DL_CP_ACK, RELEASE_CAUSE, LU_REJECT):
        assert decode(raw).encode() == raw


def test_builders_match_what_osmo_msc_accepted() -> None:
    lu = sgsap.location_update_request(IMSI1, DEFAULT_MME_NAME, Lai("001", "01", 1))
    assert lu.encode() == (
        bytes.fromhex("0901080910100000000010" "0937") + MME_NAME_LABELS
        + bytes.fromhex("0a0101" "040500f1100001")
    )  # fmt: skip
    assert sgsap.service_request("001010000000002").encode() == bytes.fromhex(
        "0601080910100000000020200102250101"
    )
    assert sgsap.tmsi_realloc_complete(IMSI1).encode() == bytes.fromhex("0c01080910100000000010")
    detach = decode(sgsap.imsi_detach_indication(IMSI1, DEFAULT_MME_NAME).encode())
    assert detach.octet(Iei.IMSI_DETACH_NONEPS_TYPE) == 1
    assert sgsap.paging_reject(IMSI1, 6).encode().endswith(b"\x08\x01\x06")


def test_unknown_type_and_ie_kept_raw() -> None:
    msg = decode(bytes.fromhex("4201 02aabb 9900"))
    assert msg.type == 0x42 and not isinstance(msg.type, MsgType)
    assert msg.ies == (sgsap.Ie(1, b"\xaa\xbb"), sgsap.Ie(0x99, b""))
    assert msg.encode() == bytes.fromhex("420102aabb9900")
    assert split(msg.encode()) == ([msg.encode()], b"")  # alone, an unknown type takes it all
    assert "type 0x42" in str(msg)


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"", "empty"),
        (bytes.fromhex("0701"), "cut short"),
        (bytes.fromhex("070108091010"), "runs past the end"),
        (bytes.fromhex("0701080910100000000010 16ff89".replace(" ", "")), "runs past"),
    ],
)
def test_malformed_messages(raw: bytes, match: str) -> None:
    with pytest.raises(SgsapError, match=match):
        decode(raw)


def test_require_and_octet_errors() -> None:
    msg = decode(RELEASE)
    with pytest.raises(SgsapError, match="NAS_CONTAINER missing"):
        msg.require(Iei.NAS_CONTAINER)
    with pytest.raises(SgsapError, match="not 1"):
        Message.build(MsgType.RELEASE_REQ, (Iei.SGS_CAUSE, b"\x01\x02")).octet(Iei.SGS_CAUSE)


# ---- framing --------------------------------------------------------------------------------


def test_two_messages_in_one_read() -> None:
    """What osmo-msc really does: RELEASE-REQUEST and a DOWNLINK-UNITDATA in one TCP read."""
    framer = Framer()
    out = framer.feed(RELEASE + DL_CP_ACK)
    assert [m.encode() for m in out] == [RELEASE, DL_CP_ACK]
    assert framer.multi_reads == 1 and framer.pending == b""


def test_one_message_over_many_reads() -> None:
    framer = Framer()
    stream = LU_ACCEPT + PAGING + DL_CP_ACK + RELEASE_CAUSE
    got: list[Message] = []
    for i in range(len(stream)):
        got += framer.feed(stream[i : i + 1])
    # RELEASE_CAUSE ends at the end of the stream with every mandatory IE: delivered.
    assert [m.encode() for m in got] == [LU_ACCEPT, PAGING, DL_CP_ACK, RELEASE_CAUSE]


@pytest.mark.parametrize(
    "second",
    [
        LU_REJECT,  # 0x0b is also Global CN-Id, an optional IE of PAGING-REQUEST
        bytes.fromhex("1d08010301080910100000000010"),  # STATUS (0x1d = LCS client id)
    ],
)
def test_type_octet_that_is_also_an_optional_ie(second: bytes) -> None:
    frames, rest = split(PAGING + second)
    assert frames == [PAGING, second] and rest == b""


def test_release_then_uplink_is_split_by_backtracking() -> None:
    """0x08 is both UPLINK-UNITDATA and the optional SGs cause of RELEASE-REQUEST."""
    uplink = sgsap.uplink_unitdata(IMSI1, bytes.fromhex("0904")).encode()
    assert split(RELEASE + uplink) == ([RELEASE, uplink], b"")


def test_lai_twice_in_location_update_request() -> None:
    lu = sgsap.location_update_request(IMSI1, DEFAULT_MME_NAME, Lai("001", "01", 1)).encode()
    old_lai = bytes.fromhex("040500f1100002")
    assert split(lu + old_lai + RELEASE) == ([lu + old_lai, RELEASE], b"")


def test_message_that_could_grow_is_held_until_flush() -> None:
    framer = Framer()
    assert framer.feed(RELEASE) == []  # RELEASE-REQUEST may still get its SGs cause IE
    assert framer.holding
    assert [m.encode() for m in framer.feed(DL_CP_ACK)] == [RELEASE, DL_CP_ACK]
    assert not framer.holding  # DOWNLINK-UNITDATA carries no optional IE: out at once
    assert framer.feed(RELEASE) == []
    assert [m.encode() for m in framer.flush()] == [RELEASE]
    assert framer.flush() == [] and framer.pending == b""
    assert sgsap.can_grow(PAGING) and not sgsap.can_grow(RELEASE_CAUSE)


def test_incomplete_tail_waits_for_more() -> None:
    frames, rest = split(RELEASE + DL_CP_ACK[:5])
    assert frames == [RELEASE] and rest == DL_CP_ACK[:5]
    frames, rest = split(DL_CP_ACK[:1])  # a type octet alone: no mandatory IE yet
    assert frames == [] and rest == DL_CP_ACK[:1]


def test_garbage_cannot_be_framed() -> None:
    with pytest.raises(SgsapError, match="cannot frame"):
        split(bytes.fromhex("07990100"))  # DOWNLINK-UNITDATA with an IE it never carries


def test_every_table_entry_is_consistent() -> None:
    for msg_type, spec in MESSAGES.items():
        assert isinstance(msg_type, MsgType)
        assert not spec.mandatory & spec.optional, msg_type


# ---- round trips ----------------------------------------------------------------------------

_DOWNLINK = [
    MsgType.DOWNLINK_UNITDATA,
    MsgType.LOCATION_UPDATE_ACCEPT,
    MsgType.IMSI_DETACH_ACK,
    MsgType.MM_INFO_REQ,
    MsgType.RELEASE_REQ,
    MsgType.ALERT_REQ,
    MsgType.SERVICE_ABORT_REQ,
]


@st.composite
def _messages(draw: st.DrawFn, types: list[MsgType]) -> Message:
    msg_type = draw(st.sampled_from(types))
    spec = MESSAGES[msg_type]
    imsi = draw(st.from_regex(r"[0-9]{6,15}", fullmatch=True))
    ies: list[tuple[int, bytes]] = [(Iei.IMSI, sgsap.encode_imsi(imsi))]
    for tag in sorted(spec.mandatory - {Iei.IMSI}):
        ies.append((tag, draw(st.binary(min_size=1, max_size=40))))
    return Message.build(msg_type, *ies)


@settings(max_examples=200, deadline=None)
@given(st.lists(_messages(_DOWNLINK), min_size=1, max_size=6))
def test_concatenated_downlink_messages_split_back(msgs: list[Message]) -> None:
    stream = b"".join(m.encode() for m in msgs)
    frames, rest = split(stream)
    assert rest == b""
    assert [decode(f) for f in frames] == msgs


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=80))
def test_random_bytes_raise_only_sgsap_error(data: bytes) -> None:
    try:
        frames, rest = split(data)
    except SgsapError:
        return
    assert b"".join(frames) + rest == data
    for frame in frames:
        decode(frame)


@settings(max_examples=100, deadline=None)
@given(st.from_regex(r"[0-9]{6,15}", fullmatch=True))
def test_imsi_round_trip(imsi: str) -> None:
    assert sgsap.decode_imsi(sgsap.encode_imsi(imsi)) == imsi
