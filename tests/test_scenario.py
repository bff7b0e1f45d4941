"""Scenario files: loading, validation errors, reproducibility, fan-out, multipart, TON/NPI."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from simulators.scenario import (
    LABELS,
    GeneratedMessage,
    ScenarioError,
    derive_ton_npi,
    load_scenario,
    loads_scenario,
)
from smsc.concat import Reassembler, concat_from_sar, concat_from_udh, parse_udh
from smsc.constants import EsmClass, Tag
from smsc.text import decode_text

SCENARIOS = Path(__file__).resolve().parent.parent / "config" / "scenarios"
KAZAKH_LONG = (
    "Құрметті клиент! Kaspi Gold картаңыз күдікті операцияға байланысты бұғатталды. Қаражатты "
    "сақтау үшін 24 сағат ішінде https://kaspi-bank.kz-secure.com/kz сілтемесі арқылы "
    "деректеріңізді растаңыз."
)


def one_stream(extra: str = "", top: str = "") -> str:
    return f"""
{top}
[[streams]]
name = "s"
label = "smishing"
count = 3
source = "+7705#######"
texts = ["Ваша карта заблокирована"]
{extra}
"""


def fingerprint(messages: list[GeneratedMessage]) -> list[tuple[object, ...]]:
    return [
        (m.label, m.stream, m.source, m.destination, m.text, [p.encode() for p in m.pdus])
        for m in messages
    ]


# ---- shipped files ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["demo.toml", "smoke.toml"])
def test_shipped_scenarios_load_and_cover_every_label(name: str) -> None:
    scenario = load_scenario(SCENARIOS / name)
    assert scenario.name == name.removesuffix(".toml")
    messages = scenario.messages()
    assert len(messages) == scenario.pass_length
    assert {m.label for m in messages} == set(LABELS)
    for m in messages:
        assert "{" not in m.text and "}" not in m.text
        for pdu in m.pdus:
            pdu.encode()  # every field fits SMPP


def test_demo_pass_has_the_announced_mix() -> None:
    scenario = load_scenario(SCENARIOS / "demo.toml")
    shares = scenario.shares()
    assert scenario.pass_length == sum(shares.values()) == 6000
    assert shares["fanout-prize"] == 2000
    fanout = [m for m in scenario.messages() if m.stream == "fanout-prize"]
    assert len({m.destination for m in fanout}) == 2000
    assert len({m.source for m in fanout}) == 1
    long_kk = [m for m in scenario.messages(500) if m.stream == "multipart-kk"]
    assert long_kk and all(len(m.pdus) == 3 and m.data_coding == 8 for m in long_kk)


def test_smoke_counts_are_exact_per_pass_and_passes_repeat() -> None:
    scenario = load_scenario(SCENARIOS / "smoke.toml")
    two_passes = scenario.messages(2 * scenario.pass_length)
    first, second = two_passes[: scenario.pass_length], two_passes[scenario.pass_length :]
    expected = scenario.shares()
    assert Counter(m.stream for m in first) == expected
    assert Counter(m.stream for m in second) == expected
    assert [m.index for m in two_passes] == list(range(len(two_passes)))


# ---- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        (one_stream('texs = ["x"]'), "streams[0].texs", "unknown key"),
        (one_stream(top="sed = 3"), "sed", "unknown key"),
        (one_stream('label2 = "x"'), "streams[0].label2", "unknown key"),
        (one_stream("weight = 2"), "streams[0].count", "not both"),
        (one_stream("data_coding = 300"), "streams[0].data_coding", "out of range"),
        (one_stream("data_coding = 4"), "streams[0].data_coding", "binary"),
        (one_stream("sar = true\npayload = true"), "streams[0].payload", "pick one"),
        (one_stream('registered_delivery = "yes"'), "streams[0].registered_delivery", "integer"),
        (
            one_stream("destinations = 20\ndestination = '+7701#'"),
            "streams[0].destinations",
            "10 possible",
        ),
        (
            one_stream("senders = 2").replace("+7705#######", "+77051234567"),
            "streams[0].senders",
            "2 distinct senders",
        ),
        (one_stream(top="messages = 2"), "messages", "less than the streams' counts"),
        (one_stream(top="messages = 5"), "messages", "no stream has a weight"),
        (one_stream().replace("count = 3", ""), "streams[0].weight", "give weight"),
        (one_stream().replace("count = 3", "weight = -1"), "streams[0].weight", "positive"),
        (one_stream().replace('name = "s"', ""), "streams[0].name", "missing"),
        ("name = 'x'", "streams", "missing"),
        ("streams = []", "streams", "non-empty"),
    ],
)
def test_validation_names_the_key(text: str, key: str, reason: str) -> None:
    with pytest.raises(ScenarioError) as info:
        loads_scenario(text, origin="t.toml")
    assert info.value.key == key
    assert reason in info.value.reason
    assert str(info.value).startswith(f"t.toml: {key}: ")


def test_validation_of_labels_sources_and_placeholders() -> None:
    def error(text: str) -> ScenarioError:
        with pytest.raises(ScenarioError) as info:
            loads_scenario(text)
        return info.value

    e = error(one_stream().replace('"smishing"', '"phishing"'))
    assert e.key == "streams[0].label" and "normal, smishing" in e.reason
    e = error(one_stream().replace('"+7705#######"', '"VeryLongBankName"'))
    assert e.key == "streams[0].source" and "at most 11" in e.reason
    e = error(one_stream().replace('"+7705#######"', '["KASPI", "+7705#######"]'))
    assert e.key == "streams[0].source" and "mixes" in e.reason
    e = error(one_stream().replace("заблокирована", "заблокирована {cod}"))
    assert e.key == "streams[0].texts[0]" and "unknown placeholder {cod}" in e.reason
    e = error(one_stream().replace("заблокирована", "заблокирована {"))
    assert e.key == "streams[0].texts[0]"
    e = error(one_stream("data_coding = 0"))  # Cyrillic does not fit GSM 7-bit
    assert e.key == "streams[0].texts[0]" and "cannot be encoded" in e.reason
    e = error(one_stream("destination = 'KASPI'"))
    assert e.key == "streams[0].destination"
    e = error(one_stream() + one_stream())
    assert e.key == "streams[1].name" and "duplicate" in e.reason
    e = error("name = 'x'\n[[streams]\n")
    assert e.key == "" and "invalid TOML" in e.reason and "line 2" in e.reason


def test_missing_file_is_a_scenario_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "nope.toml")


def test_name_defaults_to_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "night-shift.toml"
    path.write_text(one_stream(), encoding="utf-8")
    scenario = load_scenario(path)
    assert scenario.name == "night-shift" and scenario.origin == str(path)
    assert hash(scenario.streams[0].texts)  # streams are plain frozen data


# ---- generation ------------------------------------------------------------------------------


def test_seed_makes_a_run_reproducible() -> None:
    scenario = load_scenario(SCENARIOS / "smoke.toml")
    assert fingerprint(scenario.messages(60, seed=7)) == fingerprint(scenario.messages(60, seed=7))
    assert fingerprint(scenario.messages(60, seed=7)) != fingerprint(scenario.messages(60, seed=8))
    # the file's seed is the default
    assert fingerprint(scenario.messages(30)) == fingerprint(scenario.messages(30, seed=1))
    # adding a stream leaves the other streams' messages unchanged
    extra = (SCENARIOS / "smoke.toml").read_text(encoding="utf-8") + one_stream().replace(
        'name = "s"', 'name = "added"'
    )
    bigger = loads_scenario(extra)
    ours = [m for m in bigger.messages(200, seed=3) if m.stream == "smishing"][:5]
    theirs = [m for m in scenario.messages(200, seed=3) if m.stream == "smishing"][:5]
    assert fingerprint(ours) == fingerprint(theirs)


def test_fanout_gives_n_distinct_destinations_from_one_sender() -> None:
    text = """
[[streams]]
name = "fan"
label = "fanout"
destinations = 1500
source = "+7775#######"
destination = ["+7701#######", "+7707#######"]
texts = ["Поздравляем! Ваш номер выиграл приз: https://kaspi-bonus.top/prize"]
"""
    scenario = loads_scenario(text)
    assert scenario.pass_length == 1500  # count defaults to the number of recipients
    both = scenario.messages(3000, seed=5)
    messages, again = both[:1500], both[1500:]
    assert len({m.destination for m in messages}) == 1500
    assert len({m.source for m in messages}) == 1
    assert len({m.text for m in messages}) == 1
    assert all(re.fullmatch(r"770[17]\d{7}", m.destination) for m in messages)
    # a second pass writes to the same recipients again
    assert {m.destination for m in again} == {m.destination for m in messages}


def test_dense_fanout_uses_every_number_of_a_small_range() -> None:
    scenario = loads_scenario(
        one_stream("destinations = 100\ndestination = '+770100000##'").replace("count = 3", "")
    )
    assert sorted(m.destination for m in scenario.messages()) == [
        f"77010000{n:03d}" for n in range(100)
    ]


def reassemble_udh(messages: list[GeneratedMessage]) -> list[str]:
    reassembler: Reassembler[int] = Reassembler(timeout=60)
    texts = []
    for m in messages:
        for pdu in m.pdus:
            assert pdu.esm_class & EsmClass.UDHI
            elements, payload = parse_udh(pdu.short_message)
            info = concat_from_udh(elements)
            assert info is not None
            done = reassembler.add((pdu.source_addr, pdu.destination_addr), info, payload, 0, 0.0)
            if done is not None:
                texts.append(decode_text(done.payload, pdu.data_coding).text)
    return texts


def test_multipart_kazakh_ucs2_reassembles_to_the_original() -> None:
    scenario = load_scenario(SCENARIOS / "smoke.toml")
    messages = [m for m in scenario.messages() if m.stream == "multipart-kk-udh"]
    assert len(messages) == 2
    for m in messages:
        assert m.text == KAZAKH_LONG
        assert len(m.pdus) == 3
        assert {p.data_coding for p in m.pdus} == {8}
        assert all(len(p.short_message) <= 140 for p in m.pdus)
    assert messages[0].pdus[0].short_message[3] != messages[1].pdus[0].short_message[3]  # refs
    assert reassemble_udh(messages) == [KAZAKH_LONG, KAZAKH_LONG]


def test_multipart_16bit_reference() -> None:
    scenario = loads_scenario(
        one_stream("ref16 = true\ndata_coding = 8").replace(
            '"Ваша карта заблокирована"', repr(KAZAKH_LONG).replace("'", '"')
        )
    )
    messages = scenario.messages()
    assert all(m.pdus[0].short_message[:3] == b"\x06\x08\x04" for m in messages)
    assert reassemble_udh(messages) == [KAZAKH_LONG] * 3


def test_multipart_with_sar_tlvs() -> None:
    scenario = load_scenario(SCENARIOS / "smoke.toml")
    (message,) = [m for m in scenario.messages() if m.stream == "multipart-ru-sar"]
    reassembler: Reassembler[int] = Reassembler(timeout=60)
    done = None
    assert len(message.pdus) == 3
    for pdu in reversed(message.pdus):  # order of arrival does not matter
        assert pdu.esm_class == 0
        info = concat_from_sar(
            pdu.tlv_int(Tag.SAR_MSG_REF_NUM),
            pdu.tlv_int(Tag.SAR_TOTAL_SEGMENTS),
            pdu.tlv_int(Tag.SAR_SEGMENT_SEQNUM),
        )
        assert info is not None
        done = reassembler.add("k", info, pdu.short_message, 0, 0.0)
    assert done is not None and done.complete
    assert decode_text(done.payload, message.data_coding).text == message.text


def test_message_payload_carries_the_whole_text() -> None:
    scenario = load_scenario(SCENARIOS / "smoke.toml")
    (message,) = [m for m in scenario.messages() if m.stream == "multipart-kk-payload"]
    (pdu,) = message.pdus
    assert pdu.short_message == b""
    payload = pdu.tlv_bytes(Tag.MESSAGE_PAYLOAD)
    assert payload is not None and len(payload) > 140
    assert decode_text(payload, pdu.data_coding).text == message.text


def test_automatic_coding_gsm7_when_possible() -> None:
    scenario = loads_scenario(
        one_stream().replace('["Ваша карта заблокирована"]', '["Buy bread please"]')
    )
    assert {m.data_coding for m in scenario.messages()} == {0}
    assert scenario.messages()[0].pdus[0].short_message == b"Buy bread please"


# ---- addresses -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("+77011234567", (1, 1, "77011234567")),
        ("+7701#######", (1, 1, "7701#######")),
        ("1414", (0, 1, "1414")),
        ("KASPI", (5, 0, "KASPI")),
        ("Halyk Bank", (5, 0, "Halyk Bank")),
        ("Kaspi.kz", (5, 0, "Kaspi.kz")),
    ],
)
def test_derive_ton_npi(address: str, expected: tuple[int, int, str]) -> None:
    assert derive_ton_npi(address) == expected


def test_sender_ton_npi_in_generated_pdus() -> None:
    scenario = load_scenario(SCENARIOS / "smoke.toml")
    messages = scenario.messages()
    spoof = [m for m in messages if m.label == "spoof"]
    assert {m.source for m in spoof} <= {"KASPI", "Kaspi.kz", "HalykBank"}
    for m in messages:
        for pdu in m.pdus:
            assert (pdu.source_addr_ton, pdu.source_addr_npi) == (m.source_ton, m.source_npi)
            assert pdu.source_addr == m.source and pdu.destination_addr == m.destination
            assert (pdu.dest_addr_ton, pdu.dest_addr_npi) == (1, 1)
        if m.label == "spoof" or m.stream == "normal-a2p":
            assert (m.source_ton, m.source_npi) == (5, 0)
        else:
            assert (m.source_ton, m.source_npi) == (1, 1)
            assert re.fullmatch(r"77\d{9}", m.source)
    explicit = loads_scenario(one_stream("source_ton = 2\nsource_npi = 9"))
    pdus = [m.pdus[0] for m in explicit.messages()]
    assert {(p.source_addr_ton, p.source_addr_npi) for p in pdus} == {(2, 9)}


def test_senders_pool_and_registered_delivery() -> None:
    scenario = load_scenario(SCENARIOS / "smoke.toml")
    grey = [m for m in scenario.messages(250) if m.stream == "greyroute"]
    assert len({m.source for m in grey}) == 2  # a two-SIM box
    assert {p.registered_delivery for m in grey for p in m.pdus} == {1}


def test_weights_share_the_rest_of_the_pass() -> None:
    text = """
messages = 10
[values]
url = ["https://egov-kz.online"]
[[streams]]
name = "a"
label = "normal"
weight = 2
source = "+7701#######"
texts = ["Купи хлеб"]
[[streams]]
name = "b"
label = "smishing"
weight = 1
source = "+7705#######"
texts = ["Код {code}, ссылка {url}, снова {code}"]
[[streams]]
name = "c"
label = "spoof"
count = 1
source = "KASPI"
texts = ["x"]
"""
    scenario = loads_scenario(text)
    assert scenario.shares() == {"a": 6, "b": 3, "c": 1}
    for m in scenario.messages():
        if m.stream == "b":
            found = re.fullmatch(
                r"Код (\d{4}), ссылка https://egov-kz.online, снова (\d{4})", m.text
            )
            assert found and found[1] == found[2]
    missing = text.replace("messages = 10\n", "")
    with pytest.raises(ScenarioError) as info:
        loads_scenario(missing)
    assert info.value.key == "messages"
