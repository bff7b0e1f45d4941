"""IPA framing, CTRL messages and the VTY's telnet/prompt handling as pure bytes (the byte
strings are what osmo-hlr 1.5 and osmo-msc 1.9 sent in the lab, LAB-NOTES.md)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.osmocom import ipa
from gateway.osmocom.ctrl import (
    CtrlMessage,
    CtrlProtocol,
    CtrlProtocolError,
    Kind,
    answers,
    parse,
)
from gateway.osmocom.vty import VTY_ERROR, TelnetFilter, command_output, find_prompt
from gateway.switch.osmocom import parse_info

# What osmo-hlr 1.5 answered to `SET 7 subscriber.by-msisdn-4900001.cs-enabled 0`.
SET_REPLY = bytes.fromhex("0037ee00") + b"SET_REPLY 7 subscriber.by-msisdn-4900001.cs-enabled OK"
INFO = (
    "\nid\t1\nimsi\t001010000000001\nmsisdn\t4900001\nnam_cs\t0\nnam_ps\t1\nms_purged_cs\t0"
    "\nms_purged_ps\t0\nperiodic_lu_timer\t0\nperiodic_rau_tau_timer\t0\nlmsi\t00000000"
)
# osmo-msc 1.9's greeting ends with telnet negotiation, then the prompt.
GREETING = b"There is NO WARRANTY.\r\n\xff\xfb\x01\xff\xfb\x03\xff\xfe\x22\xff\xfd\x1fOsmoMSC> "


def test_ctrl_frame_bytes() -> None:
    frame = CtrlMessage(Kind.GET, "1", "subscriber.by-msisdn-4900001.cs-enabled").frame()
    assert frame[:4] == bytes.fromhex("002eee00")
    assert frame[4:] == b"GET 1 subscriber.by-msisdn-4900001.cs-enabled"
    assert len(frame) - 3 == 0x2E  # the length counts the extension byte and the text
    set_ = CtrlMessage(Kind.SET, "12", "subscriber.create", "001010000000001").encode()
    assert set_ == b"SET 12 subscriber.create 001010000000001"


def test_decoder_reassembles_split_frames_and_keeps_the_rest() -> None:
    dec = ipa.IpaDecoder()
    stream = SET_REPLY + ipa.ping() + SET_REPLY[:5]
    frames = [f for i in range(len(stream)) for f in dec.feed(stream[i : i + 1])]
    assert [f.proto for f in frames] == [ipa.Proto.OSMO, ipa.Proto.CCM]
    assert frames[0].ext == ipa.OsmoExt.CTRL and frames[0].payload.startswith(b"SET_REPLY 7 ")
    assert frames[1].is_ping and dec.pending == 5
    (last,) = dec.feed(SET_REPLY[5:])
    assert last == frames[0]


def test_ping_is_answered_with_pong() -> None:
    assert ipa.ping() == bytes.fromhex("0001fe00")
    (frame,) = ipa.IpaDecoder().feed(bytes.fromhex("0001fe00"))
    assert ipa.ccm_answer(frame) == bytes.fromhex("0001fe01")
    (pong,) = ipa.IpaDecoder().feed(bytes.fromhex("0001fe01"))
    assert pong.is_pong and ipa.ccm_answer(pong) is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (bytes.fromhex("0000ee"), "empty frame for protocol 0xee"),
        (bytes.fromhex("0000fe"), "empty frame for protocol 0xfe"),
        (bytes.fromhex("ffffee00"), "over the limit 1024"),
    ],
)
def test_malformed_length_breaks_the_decoder_for_good(data: bytes, message: str) -> None:
    dec = ipa.IpaDecoder(max_payload=1024)
    with pytest.raises(ipa.IpaError, match=message):
        dec.feed(data)
    with pytest.raises(ipa.IpaError):
        dec.feed(SET_REPLY)  # framing is lost on a byte stream: no resync


def test_encode_refuses_what_cannot_be_framed() -> None:
    with pytest.raises(ipa.IpaError, match="extension"):
        ipa.encode(ipa.Proto.OSMO, b"x")
    with pytest.raises(ipa.IpaError, match="extension"):
        ipa.encode(ipa.Proto.CCM, b"\x00", ext=0)
    with pytest.raises(ipa.IpaError, match="16-bit"):
        ipa.encode_ctrl(b"x" * 0xFFFF)


@given(st.lists(st.binary(max_size=300), max_size=8), st.integers(min_value=1, max_value=50))
def test_any_chunking_gives_the_same_frames(payloads: list[bytes], step: int) -> None:
    stream = b"".join(ipa.encode_ctrl(p) for p in payloads)
    dec = ipa.IpaDecoder()
    frames = [f for i in range(0, len(stream), step) for f in dec.feed(stream[i : i + step])]
    assert [f.payload for f in frames] == payloads and dec.pending == 0


@given(st.binary(max_size=64))
def test_garbage_gives_frames_or_ipa_error_only(data: bytes) -> None:
    with contextlib.suppress(ipa.IpaError):
        ipa.IpaDecoder(max_payload=32).feed(data)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"GET_REPLY 4 subscriber.by-msisdn-4900001.info " + INFO.encode(),
         CtrlMessage(Kind.GET_REPLY, "4", "subscriber.by-msisdn-4900001.info", INFO)),
        (b"SET_REPLY 1 subscriber.create 1",
         CtrlMessage(Kind.SET_REPLY, "1", "subscriber.create", "1")),
        (b"ERROR 6 No such subscriber.", CtrlMessage(Kind.ERROR, "6", "", "No such subscriber.")),
        (b"ERROR err Request type unknown",
         CtrlMessage(Kind.ERROR, "err", "", "Request type unknown")),
        (b"TRAP 0 bts.0.location 1,fix2d,1,2,3",
         CtrlMessage(Kind.TRAP, "0", "bts.0.location", "1,fix2d,1,2,3")),
        (b"GET 3 a.b", CtrlMessage(Kind.GET, "3", "a.b")),
        (b"SET 9 subscriber.by-imsi-1.aud2g comp128v1,00ff",
         CtrlMessage(Kind.SET, "9", "subscriber.by-imsi-1.aud2g", "comp128v1,00ff")),
    ],
)  # fmt: skip
def test_parse_and_round_trip(text: bytes, expected: CtrlMessage) -> None:
    assert parse(text) == expected
    assert parse(expected.encode()) == expected


@pytest.mark.parametrize(
    "text",
    [b"HELLO 1 x", b"GET", b"GET 1", b"SET 1 var", b"GET 1 a.b value", b"\xff\xfe", b"TRAP 0"],
)
def test_parse_refuses_malformed_messages(text: bytes) -> None:
    with pytest.raises(CtrlProtocolError):
        parse(text)


def test_encode_refuses_bad_names_and_missing_values() -> None:
    with pytest.raises(CtrlProtocolError, match="variable"):
        CtrlMessage(Kind.GET, "1", "a b").encode()
    with pytest.raises(CtrlProtocolError, match="needs a value"):
        CtrlMessage(Kind.SET, "1", "a.b").encode()


def test_protocol_ids_pongs_and_reply_matching() -> None:
    proto = CtrlProtocol()
    first = proto.request(Kind.GET, "subscriber.by-msisdn-4900001.cs-enabled")
    second = proto.request(Kind.SET, "subscriber.by-msisdn-4900001.cs-enabled", "0")
    assert (first.id, second.id) == ("1", "2")
    assert proto.data_to_send() == first.frame() + second.frame()
    with pytest.raises(CtrlProtocolError):
        proto.request(Kind.GET_REPLY, "x")
    stream = ipa.ping() + ipa.encode(ipa.Proto.OSMO, b"gsup bytes", ipa.OsmoExt.GSUP) + SET_REPLY
    messages = proto.receive_data(stream)
    assert proto.data_to_send() == ipa.pong() and proto.pings_answered == 1
    assert len(messages) == 1  # the GSUP frame is not CTRL
    reply = messages[0]
    set7 = CtrlMessage(Kind.SET, "7", reply.var, "0")
    assert answers(set7, reply) and not answers(first, reply)
    assert not answers(CtrlMessage(Kind.GET, "7", reply.var), reply)  # SET_REPLY answers SET only
    assert answers(first, CtrlMessage(Kind.ERROR, "err", "", "Invalid message ID number"))
    assert not answers(first, CtrlMessage(Kind.ERROR, "5", "", "No such subscriber."))


def test_protocol_turns_bad_framing_into_ctrl_protocol_error() -> None:
    with pytest.raises(CtrlProtocolError, match="empty frame"):
        CtrlProtocol().receive_data(bytes.fromhex("0000ee"))


def test_hlr_info_parsing() -> None:
    sub = parse_info(INFO)
    assert (sub.imsi, sub.cs_enabled, sub.ps_enabled) == ("001010000000001", False, True)


def test_telnet_filter_strips_negotiation_even_when_split() -> None:
    for step in (1, 2, 3, len(GREETING)):
        f = TelnetFilter()
        out = b"".join(f.feed(GREETING[i : i + step]) for i in range(0, len(GREETING), step))
        assert out == b"There is NO WARRANTY.\r\nOsmoMSC> "
    sub = bytes([0xFF, 0xFA, 0x1F, 0x00, 0x50, 0xFF, 0xF0])  # IAC SB NAWS ... IAC SE
    assert TelnetFilter().feed(b"a" + sub + b"b\xff\xffc") == b"ab\xffc"


def test_prompts_and_command_output() -> None:
    assert find_prompt("...\r\nOsmoMSC> ") is not None
    prompt = find_prompt("x\nOsmoHLR(config-hlr)# ")
    assert prompt is not None and (prompt.name, prompt.node, prompt.mode) == (
        "OsmoHLR", "(config-hlr)", "#",
    )  # fmt: skip
    assert find_prompt("OsmoMSC# show") is None
    assert find_prompt("ends with # ") is None
    text = "subscriber imsi 1 expire\r\n% No subscriber found for imsi 1\r\nOsmoMSC# "
    assert command_output("subscriber imsi 1 expire", text) == "% No subscriber found for imsi 1"


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("% Unknown command.", True),
        ("% Command incomplete.", True),
        ("% No such subscriber", True),
        ("% Created subscriber 001010000000001", False),
        ("% VLR released subscriber IMSI-001010000000001:MSISDN-4900001", False),
        ("% No subscriber found for imsi 001010000000001", False),
    ],
)
def test_vty_error_lines(line: str, error: bool) -> None:
    assert bool(VTY_ERROR.search(f"output\n{line}\n")) is error
