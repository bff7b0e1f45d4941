"""Tests for smsc.concat: UDH parsing and concatenated message reassembly."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsc.concat import (
    Assembled,
    ConcatInfo,
    Reassembler,
    UdhElement,
    UdhError,
    concat_from_sar,
    concat_from_udh,
    parse_udh,
)
from smsc.text import decode_text, split_for_sms

# ---- parse_udh ------------------------------------------------------------------------------


def test_parse_udh_8bit_concat() -> None:
    elements, payload = parse_udh(bytes.fromhex("05 00 03 2a 02 01") + b"hello")
    assert elements == [UdhElement(0x00, b"\x2a\x02\x01")]
    assert payload == b"hello"


def test_parse_udh_several_elements() -> None:
    # 16-bit application port (IEI 0x05) then 16-bit concat (IEI 0x08)
    data = bytes.fromhex("0c 05 04 0b 84 23 f0 08 04 12 34 03 02") + b"\x00\x41"
    elements, payload = parse_udh(data)
    assert elements == [
        UdhElement(0x05, bytes.fromhex("0b 84 23 f0")),
        UdhElement(0x08, bytes.fromhex("12 34 03 02")),
    ]
    assert payload == b"\x00\x41"


def test_parse_udh_empty_header_and_zero_length_ie() -> None:
    assert parse_udh(b"\x00abc") == ([], b"abc")
    assert parse_udh(b"\x02\x70\x00") == ([UdhElement(0x70, b"")], b"")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "no UDHL"),
        (b"\x09\x00\x03\x01", "UDHL 9 exceeds the 3 octets"),
        (b"\x05\x00\x04\x01\x02\x01xyz", "IE 0x00 at UDH offset 0 has length 4, beyond the UDH"),
        (b"\x01\x00", "truncated IE at UDH offset 0"),
        (b"\x04\x70\x00\x00\x05", "IE 0x00 at UDH offset 2 has length 5"),
    ],
)
def test_parse_udh_broken(data: bytes, message: str) -> None:
    with pytest.raises(UdhError, match=message):
        parse_udh(data)


def test_udh_error_is_value_error() -> None:
    assert issubclass(UdhError, ValueError)


@given(st.binary(max_size=300))
def test_parse_udh_raises_only_udh_error(data: bytes) -> None:
    try:
        elements, payload = parse_udh(data)
    except UdhError:
        return
    header_len = sum(2 + len(e.data) for e in elements)
    assert header_len == data[0]
    assert payload == data[1 + data[0] :]


@given(
    st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=20)), max_size=8),
    st.binary(max_size=50),
)
def test_parse_udh_round_trip(ies: list[tuple[int, bytes]], payload: bytes) -> None:
    header = b"".join(bytes([iei, len(data)]) + data for iei, data in ies)
    if len(header) > 255:
        return
    elements, rest = parse_udh(bytes([len(header)]) + header + payload)
    assert elements == [UdhElement(iei, data) for iei, data in ies]
    assert rest == payload


# ---- concat_from_udh / concat_from_sar ------------------------------------------------------


def test_concat_from_udh_8bit() -> None:
    assert concat_from_udh([UdhElement(0, b"\x2a\x03\x02")]) == ConcatInfo(42, 3, 2, 8)


def test_concat_from_udh_16bit() -> None:
    info = concat_from_udh([UdhElement(8, b"\x12\x34\x03\x03")])
    assert info == ConcatInfo(0x1234, 3, 3, 16)


def test_concat_from_udh_ignores_other_elements_and_uses_last() -> None:
    elements = [
        UdhElement(0x05, b"\x0b\x84\x23\xf0"),
        UdhElement(0x00, b"\x01\x02\x01"),
        UdhElement(0x08, b"\x00\x07\x04\x04"),
        UdhElement(0x24, b"\x01"),
    ]
    assert concat_from_udh(elements) == ConcatInfo(7, 4, 4, 16)
    assert concat_from_udh([UdhElement(0x05, b"\x0b\x84\x23\xf0")]) is None
    assert concat_from_udh([]) is None


@pytest.mark.parametrize(
    "element",
    [
        UdhElement(0, b"\x01\x00\x00"),  # total 0
        UdhElement(0, b"\x01\x02\x00"),  # seq 0
        UdhElement(0, b"\x01\x02\x03"),  # seq > total
        UdhElement(0, b"\x01\x02"),  # too short
        UdhElement(0, b"\x01\x02\x01\x00"),  # too long
        UdhElement(8, b"\x01\x02\x01"),  # 16-bit too short
        UdhElement(8, b"\x00\x01\x00\x00"),
    ],
)
def test_concat_from_udh_unusable_is_none(element: UdhElement) -> None:
    assert concat_from_udh([element]) is None


def test_concat_from_sar() -> None:
    assert concat_from_sar(0xFFFF, 2, 1) == ConcatInfo(0xFFFF, 2, 1, 16)
    assert concat_from_sar(0, 1, 1) == ConcatInfo(0, 1, 1, 16)


@pytest.mark.parametrize(
    ("ref", "total", "seq"),
    [
        (None, None, None),
        (1, None, None),
        (1, 2, None),
        (None, 2, 1),
        (1, 0, 0),
        (1, 2, 0),
        (1, 2, 3),
        (0x10000, 2, 1),
        (-1, 2, 1),
        (1, 256, 1),
    ],
)
def test_concat_from_sar_unusable_is_none(
    ref: int | None, total: int | None, seq: int | None
) -> None:
    assert concat_from_sar(ref, total, seq) is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ref": 256, "total": 2, "seq": 1},
        {"ref": 1, "total": 0, "seq": 0},
        {"ref": 1, "total": 2, "seq": 3},
        {"ref": 1, "total": 256, "seq": 1},
        {"ref": 1, "total": 2, "seq": 1, "ref_bits": 12},
    ],
)
def test_concat_info_validates(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        ConcatInfo(**kwargs)


# ---- Reassembler ----------------------------------------------------------------------------

KEY_A = ("77011234567", "7999", "esme-a")
KEY_B = ("77017654321", "7999", "esme-a")


def test_reassemble_in_order() -> None:
    r: Reassembler[str] = Reassembler(timeout=30)
    assert r.add(KEY_A, ConcatInfo(5, 3, 1), b"aa", "t1", 0.0) is None
    assert r.add(KEY_A, ConcatInfo(5, 3, 2), b"bb", "t2", 1.0) is None
    assert r.pending_count == 1
    done = r.add(KEY_A, ConcatInfo(5, 3, 3), b"cc", "t3", 2.0)
    assert done == Assembled(
        payload=b"aabbcc",
        tokens=["t1", "t2", "t3"],
        parts_received=3,
        total=3,
        complete=True,
        missing=(),
        key=KEY_A,
        ref=5,
        ref_bits=8,
        first_seen=0.0,
    )
    assert r.pending_count == 0
    assert r.next_deadline() is None
    assert r.handle_timer(1000.0) == []


def test_reassemble_out_of_order() -> None:
    r: Reassembler[int] = Reassembler(timeout=30)
    assert r.add(KEY_A, ConcatInfo(5, 3, 3), b"cc", 3, 0.0) is None
    assert r.add(KEY_A, ConcatInfo(5, 3, 1), b"aa", 1, 0.5) is None
    done = r.add(KEY_A, ConcatInfo(5, 3, 2), b"bb", 2, 1.0)
    assert done is not None
    assert done.payload == b"aabbcc"
    assert done.tokens == [3, 1, 2]  # arrival order
    assert done.complete and done.missing == ()


def test_single_part_concat_completes_at_once() -> None:
    r: Reassembler[str] = Reassembler(timeout=30, max_pending=1)
    r.add(KEY_B, ConcatInfo(1, 2, 1), b"x", "open", 0.0)
    done = r.add(KEY_A, ConcatInfo(9, 1, 1), b"only", "t", 0.0)
    assert done is not None and done.complete and done.payload == b"only"
    assert r.pending_count == 1 and r.drain_evicted() == []  # nothing was evicted for it


def test_duplicate_keeps_first_payload_and_every_token() -> None:
    r: Reassembler[str] = Reassembler(timeout=30)
    assert r.add(KEY_A, ConcatInfo(5, 2, 1), b"first", "t1", 0.0) is None
    assert r.add(KEY_A, ConcatInfo(5, 2, 1), b"retry", "t1-dup", 1.0) is None
    done = r.add(KEY_A, ConcatInfo(5, 2, 2), b"-second", "t2", 2.0)
    assert done is not None
    assert done.payload == b"first-second"
    assert done.tokens == ["t1", "t1-dup", "t2"]
    assert done.parts_received == 2 and done.complete


def test_timeout_lists_missing_parts() -> None:
    r: Reassembler[str] = Reassembler(timeout=10)
    r.add(KEY_A, ConcatInfo(5, 5, 4), b"D", "t4", 100.0)
    r.add(KEY_A, ConcatInfo(5, 5, 2), b"B", "t2", 105.0)
    assert r.next_deadline() == 110.0
    assert r.handle_timer(109.999) == []
    expired = r.handle_timer(110.0)
    assert expired == [
        Assembled(
            payload=b"BD",
            tokens=["t4", "t2"],
            parts_received=2,
            total=5,
            complete=False,
            missing=(1, 3, 5),
            key=KEY_A,
            ref=5,
            ref_bits=8,
            first_seen=100.0,
        )
    ]
    assert r.pending_count == 0 and r.next_deadline() is None
    # a late part opens a new message rather than reviving the expired one
    assert r.add(KEY_A, ConcatInfo(5, 5, 1), b"A", "t1", 111.0) is None
    assert r.pending_count == 1


def test_expire_only_returns_old_groups_in_order() -> None:
    r: Reassembler[str] = Reassembler(timeout=10)
    for i in range(5):
        r.add(KEY_A, ConcatInfo(i, 2, 1), b"x", f"t{i}", float(i))
    expired = r.handle_timer(12.5)
    assert [a.ref for a in expired] == [0, 1, 2]
    assert r.pending_count == 2
    assert r.next_deadline() == 13.0


def test_deadline_measured_from_first_part() -> None:
    r: Reassembler[str] = Reassembler(timeout=10)
    r.add(KEY_A, ConcatInfo(1, 3, 1), b"a", "t1", 0.0)
    r.add(KEY_A, ConcatInfo(1, 3, 2), b"b", "t2", 9.0)  # does not extend the deadline
    assert r.next_deadline() == 10.0
    assert [a.tokens for a in r.handle_timer(10.0)] == [["t1", "t2"]]


def test_clock_going_backwards_keeps_order() -> None:
    r: Reassembler[str] = Reassembler(timeout=10)
    r.add(KEY_A, ConcatInfo(1, 2, 1), b"a", "t1", 50.0)
    r.add(KEY_A, ConcatInfo(2, 2, 1), b"b", "t2", 40.0)  # treated as 50.0
    assert r.next_deadline() == 60.0
    assert [a.ref for a in r.handle_timer(60.0)] == [1, 2]


def test_8bit_and_16bit_refs_not_mixed() -> None:
    r: Reassembler[str] = Reassembler(timeout=30)
    assert r.add(KEY_A, ConcatInfo(7, 2, 1, ref_bits=8), b"8a", "a1", 0.0) is None
    assert r.add(KEY_A, ConcatInfo(7, 2, 2, ref_bits=16), b"16b", "b2", 0.0) is None
    assert r.pending_count == 2
    done8 = r.add(KEY_A, ConcatInfo(7, 2, 2, ref_bits=8), b"8b", "a2", 1.0)
    done16 = r.add(KEY_A, ConcatInfo(7, 2, 1, ref_bits=16), b"16a", "b1", 1.0)
    assert done8 is not None and done8.payload == b"8a8b" and done8.tokens == ["a1", "a2"]
    assert done16 is not None and done16.payload == b"16a16b" and done16.tokens == ["b2", "b1"]
    assert (done8.ref_bits, done16.ref_bits) == (8, 16)


def test_udh_8bit_and_16bit_parts_not_mixed_end_to_end() -> None:
    _, parts8 = split_for_sms("a" * 200, ref=0x12)
    _, parts16 = split_for_sms("b" * 200, ref=0x12, ref16=True)
    r: Reassembler[int] = Reassembler(timeout=30)
    results = []
    for i, body in enumerate([parts8[0], parts16[0], parts16[1], parts8[1]]):
        elements, payload = parse_udh(body)
        info = concat_from_udh(elements)
        assert info is not None
        results.append(r.add(KEY_A, info, payload, i, 0.0))
    assert results[0] is None and results[1] is None
    assert results[2] is not None and results[2].payload == b"b" * 200
    assert results[3] is not None and results[3].payload == b"a" * 200


def test_two_senders_same_ref_not_mixed() -> None:
    r: Reassembler[str] = Reassembler(timeout=30)
    r.add(KEY_A, ConcatInfo(1, 2, 1), b"A1", "a1", 0.0)
    r.add(KEY_B, ConcatInfo(1, 2, 1), b"B1", "b1", 0.0)
    assert r.pending_count == 2
    done_b = r.add(KEY_B, ConcatInfo(1, 2, 2), b"B2", "b2", 0.0)
    done_a = r.add(KEY_A, ConcatInfo(1, 2, 2), b"A2", "a2", 0.0)
    assert done_b is not None and (done_b.payload, done_b.tokens) == (b"B1B2", ["b1", "b2"])
    assert done_a is not None and (done_a.payload, done_a.tokens) == (b"A1A2", ["a1", "a2"])


def test_same_ref_different_total_not_mixed() -> None:
    r: Reassembler[str] = Reassembler(timeout=30)
    r.add(KEY_A, ConcatInfo(1, 2, 1), b"x", "x", 0.0)
    assert r.add(KEY_A, ConcatInfo(1, 3, 2), b"y", "y", 0.0) is None
    assert r.pending_count == 2


def test_eviction_at_max_pending_loses_no_token() -> None:
    r: Reassembler[str] = Reassembler(timeout=30, max_pending=2)
    r.add(KEY_A, ConcatInfo(1, 3, 1), b"a", "a1", 0.0)
    r.add(KEY_A, ConcatInfo(1, 3, 1), b"a", "a1-dup", 0.5)
    r.add(KEY_A, ConcatInfo(2, 2, 2), b"b", "b2", 1.0)
    assert r.drain_evicted() == []
    # a part of an open message evicts nothing
    r.add(KEY_A, ConcatInfo(2, 2, 2), b"b", "b2-dup", 1.5)
    assert r.evicted_count == 0
    # a third message evicts the oldest
    assert r.add(KEY_B, ConcatInfo(3, 2, 1), b"c", "c1", 2.0) is None
    assert r.pending_count == 2 and r.evicted_count == 1
    assert r.next_deadline() == 2.0  # expire() now has something to hand back
    evicted = r.drain_evicted()
    assert evicted == [
        Assembled(
            payload=b"a",
            tokens=["a1", "a1-dup"],
            parts_received=1,
            total=3,
            complete=False,
            missing=(2, 3),
            key=KEY_A,
            ref=1,
            ref_bits=8,
            first_seen=0.0,
        )
    ]
    assert r.drain_evicted() == []
    assert r.next_deadline() == 31.0
    # eviction also surfaces through expire()
    r.add(KEY_B, ConcatInfo(4, 2, 1), b"d", "d1", 3.0)
    out = r.handle_timer(3.0)
    assert [a.tokens for a in out] == [["b2", "b2-dup"]]
    assert r.evicted_count == 0
    rest = r.handle_timer(100.0)
    assert sorted(t for a in rest for t in a.tokens) == ["c1", "d1"]


def test_constructor_validation() -> None:
    with pytest.raises(ValueError):
        Reassembler[str](timeout=0)
    with pytest.raises(ValueError):
        Reassembler[str](timeout=1, max_pending=0)


# ---- properties -----------------------------------------------------------------------------

events = st.lists(
    st.tuples(
        st.sampled_from(["k1", "k2"]),  # key
        st.integers(0, 3),  # ref
        st.sampled_from([8, 16]),  # ref bits
        st.integers(1, 3),  # total
        st.integers(1, 3),  # seq (clipped to total)
        st.floats(0, 5),  # time step
    ),
    max_size=60,
)


@settings(max_examples=200)
@given(events, st.integers(1, 4), st.floats(0.5, 10))
def test_no_token_is_ever_lost(
    steps: list[tuple[str, int, int, int, int, float]], max_pending: int, timeout: float
) -> None:
    r: Reassembler[int] = Reassembler(timeout=timeout, max_pending=max_pending)
    now = 0.0
    returned: list[Assembled[int]] = []
    for token, (key, ref, bits, total, seq, step) in enumerate(steps):
        now += step
        returned.extend(r.handle_timer(now))
        done = r.add(key, ConcatInfo(ref, total, min(seq, total), bits), bytes([token]), token, now)
        if done is not None:
            assert done.complete
            returned.append(done)
        assert r.pending_count <= max_pending
        deadline = r.next_deadline()
        if r.pending_count or r.evicted_count:
            assert deadline is not None
    returned.extend(r.handle_timer(now + timeout))
    assert r.pending_count == 0 and r.next_deadline() is None
    tokens = Counter(t for a in returned for t in a.tokens)
    assert tokens == Counter(range(len(steps)))
    for a in returned:
        assert a.parts_received == a.total - len(a.missing)
        assert a.complete == (not a.missing)
        assert len(a.payload) == a.parts_received


@settings(max_examples=150)
@given(
    st.one_of(
        st.text(alphabet="abcXYZ 0123€{}[]~^|\\@£", max_size=700),
        st.text(alphabet="Сіздің картаңыз бұғатталды ӘҒҚҢӨҰҮҺІ😀🇰🇿", max_size=400),
    ),
    st.booleans(),
    st.integers(0, 255),
    st.randoms(use_true_random=False),
)
def test_split_reassemble_decode_round_trip(
    text: str, ref16: bool, ref: int, rnd: random.Random
) -> None:
    coding, bodies = split_for_sms(text, ref=ref, ref16=ref16)
    if len(bodies) == 1:
        assert decode_text(bodies[0], coding).text == text
        return
    order = list(range(len(bodies)))
    rnd.shuffle(order)
    r: Reassembler[int] = Reassembler(timeout=60)
    result = None
    for n, i in enumerate(order):
        elements, payload = parse_udh(bodies[i])
        info = concat_from_udh(elements)
        assert info is not None
        assert (info.ref, info.total, info.seq) == (ref, len(bodies), i + 1)
        assert info.ref_bits == (16 if ref16 else 8)
        result = r.add(("src", "dst"), info, payload, i, float(n))
        if n < len(order) - 1:
            assert result is None
    assert result is not None and result.complete
    assert result.tokens == order
    decoded = decode_text(result.payload, coding)
    assert decoded.errors == ()
    assert decoded.text == text
