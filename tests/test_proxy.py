"""The A2P proxy end to end (docs/proxy.md): aggregators bind to the gateway's [proxy] as to an
SMSC; every submit is inspected, answered with fraudgate's id, forwarded to the simulated SMSC
(the operator's), and its receipts come back with the id the aggregator knows."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest
from waiting import eventually

from smsc.constants import Status
from smsc.pdu import SmppError, SubmitSm
from smsc.receipt import receipt_in
from smsc.text import split_for_sms
from tests.helpers.proxy_lab import KASPI_AGGR, proxy_lab

B = "77021234567"
HELLO = "Ваш заказ №5512 доставлен в пункт выдачи. Код получения 4471."


def submit(source: str, dest: str, text: str, *, ton: int = 5, receipt: int = 1) -> SubmitSm:
    coding, bodies = split_for_sms(text, ref=1)
    (body,) = bodies
    return SubmitSm(
        source_addr_ton=ton, source_addr_npi=0 if ton == 5 else 1, source_addr=source,
        dest_addr_ton=1, dest_addr_npi=1, destination_addr=dest,
        registered_delivery=receipt, data_coding=coding, short_message=body,
    )  # fmt: skip


async def test_a_submit_goes_to_the_smsc_and_its_receipt_comes_back_with_our_id(
    tmp_path: Path,
) -> None:
    async with proxy_lab(tmp_path) as lab:
        link, mine = await lab.aggregator()
        resp = await link.request(submit("SHOP", B, HELLO))
        assert resp.status == 0
        our_id = resp.message_id  # type: ignore[attr-defined]
        await eventually(lambda: len(lab.phones.received) == 1)
        assert lab.phones.received[0].destination_addr == B
        await eventually(lambda: len(mine.receipts()) == 1)
        receipt = receipt_in(mine.receipts()[0])
        assert receipt is not None and receipt.message_id == our_id and receipt.stat == "DELIVRD"
        assert lab.at_smsc == 1


async def test_a_spoofed_bank_sender_is_refused_and_never_reaches_the_smsc(
    tmp_path: Path,
) -> None:
    async with proxy_lab(tmp_path) as lab:
        link, _ = await lab.aggregator()
        resp = await link.request(submit("Kaspi.kz", B, HELLO))
        assert resp.status == Status.ESME_RINVSRCADR
        other, _ = await lab.aggregator(KASPI_AGGR)
        ok = await other.request(submit("Kaspi.kz", B, HELLO))
        assert ok.status == 0
        await eventually(lambda: len(lab.phones.received) == 1)
        assert lab.phones.received[0].source_addr == "Kaspi.kz"
        assert lab.at_smsc == 1


FRAUD = (
    "Ваша карта заблокирована. Для разблокировки перейдите по ссылке kaspi-bank.kz-secure.com "
    "и введите код из SMS."
)


SHORT_FRAUD = "Ваша карта заблокирована. Срочно: kaspi-bank.kz-secure.com"  # one part


def parts(source: str, dest: str, text: str, ref: int = 0x33) -> list[SubmitSm]:
    coding, bodies = split_for_sms(text, ref=ref)
    return [
        SubmitSm(source_addr_ton=5, source_addr=source, dest_addr_ton=1, dest_addr_npi=1,
                 destination_addr=dest, esm_class=0x40, registered_delivery=1,
                 data_coding=coding, short_message=body)
        for body in bodies
    ]  # fmt: skip


def texts_at(lab: object) -> list[str]:
    from smsc.sms import part_as_sms, split_part

    return [part_as_sms(p, split_part(p)).text for p in lab.phones.received]  # type: ignore[attr-defined]


async def test_a_long_message_goes_only_when_its_last_part_allows_it(
    tmp_path: Path, db_url: str
) -> None:
    long_ok = "Уважаемый клиент! " + "Ваш заказ собран и передан в доставку. " * 5
    long_bad = "Уважаемый клиент! " + "Ваш заказ собран и передан в доставку. " * 3 + FRAUD
    async with proxy_lab(tmp_path, store_url=db_url) as lab:
        link, _ = await lab.aggregator()
        good = parts("SHOP", B, long_ok, ref=1)
        assert len(good) > 2
        for p in good[:-1]:
            assert (await link.request(p)).status == 0
        await asyncio.sleep(0.3)
        assert lab.at_smsc == 0  # held until the last part decides
        assert (await link.request(good[-1])).status == 0
        await eventually(lambda: lab.at_smsc == len(good))
        await eventually(lambda: "".join(texts_at(lab)) == long_ok)
        bad = parts("SHOP", "77021230000", long_bad, ref=2)
        answers = [(await link.request(p)).status for p in bad]
        assert answers[:-1] == [0] * (len(bad) - 1)  # the bait is only in the last part
        assert answers[-1] == 0x66
        await asyncio.sleep(0.5)
        assert lab.at_smsc == len(good)  # none of the blocked message's parts went
        assert lab.proxy.stats.held_dropped == len(bad) - 1


async def test_a_resubmission_is_answered_with_the_first_id_and_sent_once(tmp_path: Path) -> None:
    async with proxy_lab(tmp_path) as lab:
        link, _ = await lab.aggregator()
        first = await link.request(submit("SHOP", B, HELLO))
        again = await link.request(submit("SHOP", B, HELLO))  # its answer "was lost"
        assert first.status == again.status == 0
        assert again.message_id == first.message_id  # type: ignore[attr-defined]
        await eventually(lambda: lab.at_smsc == 1)
        await asyncio.sleep(0.3)
        assert lab.at_smsc == 1 and lab.proxy.stats.repeated == 1


async def test_a_sender_id_the_account_is_not_contracted_for_is_refused(tmp_path: Path) -> None:
    async with proxy_lab(tmp_path) as lab:
        link, _ = await lab.aggregator()
        assert (await link.request(submit("Taxi", B, HELLO))).status == 0
        assert (await link.request(submit("BestLoans", B, HELLO))).status == 0x0A
        # numbers are not sender ids: a long number passes the contract check
        assert (await link.request(submit("77011112233", B, HELLO, ton=1))).status == 0
        await eventually(lambda: lab.at_smsc == 2)


async def test_monitor_mode_forwards_what_it_would_block_and_records_it(tmp_path: Path) -> None:
    async with proxy_lab(tmp_path, mode="monitor") as lab:
        link, _ = await lab.aggregator()
        assert (await link.request(submit("Kaspi.kz", B, SHORT_FRAUD))).status == 0
        await eventually(lambda: lab.at_smsc == 1)
        (seen,) = lab.inspected
        assert seen.verdict.decision.value == "block"
        assert seen.sms.route.value == "a2p" and seen.sms.smsc == "aggr"


async def test_query_cancel_and_replace_use_the_id_the_aggregator_knows(tmp_path: Path) -> None:
    from smsc.constants import MessageState
    from smsc.pdu import CancelSm, QuerySm, ReplaceSm

    async with proxy_lab(tmp_path) as lab:
        link, _ = await lab.aggregator()
        resp = await link.request(submit("SHOP", B, HELLO))
        our_id = resp.message_id  # type: ignore[attr-defined]
        await eventually(lambda: lab.at_smsc == 1)
        await eventually(lambda: lab.proxy.forwarder.smsc_id(our_id) is not None)
        q = await link.request(QuerySm(message_id=our_id, source_addr="SHOP", source_addr_ton=5))
        assert q.status == 0 and q.message_id == our_id  # type: ignore[attr-defined]
        assert q.message_state in (MessageState.ENROUTE, MessageState.DELIVERED)  # type: ignore[attr-defined]
        unknown = await link.request(QuerySm(message_id="nope", source_addr="SHOP"))
        assert unknown.status == 0x0C
        # a replacement text is inspected: smishing does not slip in by replace_sm
        bad = ReplaceSm(message_id=our_id, source_addr="SHOP", source_addr_ton=5,
                        short_message=split_for_sms(SHORT_FRAUD, ref=1)[1][0])  # fmt: skip
        assert (await link.request(bad)).status == 0x66
        # another account cannot touch this one's messages
        other, _ = await lab.aggregator("kaspi-a2p")
        theirs = await other.request(CancelSm(message_id=our_id, source_addr="SHOP"))
        assert theirs.status == 0x0C


async def test_binds_refused_for_a_wrong_password_an_unknown_account_or_address(
    tmp_path: Path,
) -> None:
    import ipaddress

    from smsc.client import EsmeClient, EsmeConfig
    from smsc.link import BindError
    from smsc.session import BindType
    from tests.helpers.proxy_lab import AGGR, Receiver

    async with proxy_lab(tmp_path) as lab:
        port = lab.proxy.port

        async def bind(system_id: str, password: str) -> int:
            cfg = EsmeConfig("127.0.0.1", port, system_id, password, BindType.TRANSCEIVER)
            try:
                async with EsmeClient(cfg, Receiver()):
                    return 0
            except BindError as exc:
                return exc.status

        assert await bind(AGGR, "wrong") == 0x0E
        assert await bind("nobody", "pw") == 0x0F
        assert await bind(AGGR, "pw") == 0
        lab.proxy.accounts[AGGR] = dataclasses.replace(
            lab.proxy.accounts[AGGR], allow=(ipaddress.ip_network("10.0.0.0/8"),)
        )
        assert await bind(AGGR, "pw") == 0x0D  # the password is right, the address is not


async def test_over_its_rate_an_account_is_throttled(tmp_path: Path) -> None:
    async with proxy_lab(tmp_path) as lab:
        acct = lab.proxy.accounts["aggr"]
        from smsc.rate import TokenBucket

        lab.proxy.buckets[acct.system_id] = TokenBucket(5.0)
        link, _ = await lab.aggregator()
        statuses = [
            (await link.request(submit("SHOP", B, f"{HELLO} {i}"))).status for i in range(12)
        ]
        assert statuses.count(0) == 5 and statuses.count(0x58) == 7


async def test_mo_for_an_accounts_number_goes_to_its_bind(tmp_path: Path) -> None:
    async with proxy_lab(tmp_path) as lab:
        _, mine = await lab.aggregator()
        coding, (body,) = split_for_sms("СТОП", ref=1)
        lab.smsc.inject("77017654321", "75551", body, data_coding=coding)
        await eventually(lambda: len(mine.received) == 1)
        assert mine.received[0].destination_addr == "75551"
        assert mine.received[0].source_addr == "77017654321"


async def test_data_sm_and_submit_multi_are_inspected_and_forwarded(tmp_path: Path) -> None:
    from smsc.constants import Tag
    from smsc.pdu import DataSm, SmeAddress, SubmitMulti, Tlv

    async with proxy_lab(tmp_path) as lab:
        link, _ = await lab.aggregator()
        coding, (body,) = split_for_sms(HELLO, ref=1)
        data = DataSm(source_addr_ton=5, source_addr="SHOP", dest_addr_ton=1,
                      destination_addr=B, data_coding=coding,
                      tlvs=[Tlv(Tag.MESSAGE_PAYLOAD, body)])  # fmt: skip
        assert (await link.request(data)).status == 0
        multi = SubmitMulti(source_addr_ton=5, source_addr="Kaspi.kz",
                            dest_addresses=[SmeAddress(1, 1, B), SmeAddress(1, 1, "77051112233")],
                            data_coding=coding, short_message=body)  # fmt: skip
        assert (await link.request(multi)).status == 0x0A  # spoofed, whatever the command
        multi.source_addr = "Taxi"
        assert (await link.request(multi)).status == 0
        await eventually(lambda: lab.at_smsc == 3)  # the SMSC counts each of multi's addresses
        sent = [m.dest for m in lab.smsc.messages.values() if m.origin == "fraudgate"]
        assert sorted(sent) == sorted([B, B, "77051112233"])


async def test_an_aggregator_binds_over_tls_and_a_plain_client_gets_nothing(
    tmp_path: Path,
) -> None:
    from fixtures_services import make_tls_material

    from smsc.client import EsmeClient, EsmeConfig, TlsConfig
    from smsc.session import BindType
    from tests.helpers.proxy_lab import AGGR, Receiver

    tls = make_tls_material(tmp_path / "tls")
    async with proxy_lab(
        tmp_path, tls_cert=str(tls.server_cert), tls_key=str(tls.server_key)
    ) as lab:
        secure = EsmeConfig("127.0.0.1", lab.proxy.port, AGGR, "pw", BindType.TRANSCEIVER,
                            tls=TlsConfig(ca_file=str(tls.ca)))  # fmt: skip
        async with EsmeClient(secure, Receiver()) as link:
            assert (await link.request(submit("SHOP", B, HELLO))).status == 0
        await eventually(lambda: lab.at_smsc == 1)
        plain = EsmeConfig("127.0.0.1", lab.proxy.port, AGGR, "pw", BindType.TRANSCEIVER,
                           bind_timeout=2.0)  # fmt: skip
        with pytest.raises((OSError, TimeoutError, SmppError)):  # never bound
            async with EsmeClient(plain, Receiver()):
                pass


def test_decimal_ids_are_unique_increasing_and_fit_a_signed_64_bit_number() -> None:
    from gateway.proxy.ids import DecimalIds

    now = [1_800_000_000.0]
    ids = DecimalIds(node=5, clock=lambda: now[0])
    got = [int(ids.next()) for _ in range(70_000)]  # more than one millisecond holds
    assert got == sorted(got) and len(set(got)) == len(got)
    assert all(0 < x < 2**63 for x in got)
    assert all((x >> 16) & 0x3F == 5 for x in got)  # the node's bits
    now[0] -= 10.0  # the clock goes back: ids do not
    assert int(ids.next()) > got[-1]
    assert (
        DecimalIds(node=6, clock=lambda: 1_800_000_000.0).next()
        != DecimalIds(node=5, clock=lambda: 1_800_000_000.0).next()
    )


async def test_an_account_with_decimal_ids_gets_them_in_answers_receipts_and_queries(
    tmp_path: Path,
) -> None:
    from gateway.proxy.settings import ProxyAccount
    from smsc.pdu import QuerySm
    from tests.helpers.proxy_lab import AGGR, PASSWORD

    accounts = [ProxyAccount(AGGR, PASSWORD, id_format="decimal")]
    async with proxy_lab(tmp_path, accounts=accounts) as lab:
        link, mine = await lab.aggregator()
        resp = await link.request(submit("SHOP", B, HELLO))
        number = resp.message_id  # type: ignore[attr-defined]
        assert number.isdigit() and int(number) < 2**63
        await eventually(lambda: len(mine.receipts()) == 1)
        receipt = receipt_in(mine.receipts()[0])
        assert receipt is not None and receipt.message_id == number
        q = await link.request(QuerySm(message_id=number, source_addr="SHOP", source_addr_ton=5))
        assert q.status == 0 and q.message_id == number  # type: ignore[attr-defined]
        again = await link.request(submit("SHOP", B, HELLO))  # a resubmission: the same number
        assert again.message_id == number  # type: ignore[attr-defined]


async def test_parts_sent_back_to_back_are_released_together(tmp_path: Path) -> None:
    """An aggregator with a window sends every part before the first is answered: the last
    part's release must reach the held rows whose own writes were still queued."""
    from gateway.proxy.journal import SubmitState

    text = "Уважаемый клиент! " + "Ваш заказ собран и передан в доставку. " * 5
    async with proxy_lab(tmp_path) as lab:
        link, _ = await lab.aggregator(window=10)
        answers = await asyncio.gather(*(link.request(p) for p in parts("SHOP", B, text, ref=9)))
        ids = [a.message_id for a in answers]  # type: ignore[attr-defined]
        assert all(a.status == 0 for a in answers) and len(ids) > 2
        await eventually(lambda: lab.at_smsc == len(ids))
        settled = (SubmitState.FORWARDED, SubmitState.RECEIPTED)

        async def all_settled() -> bool:
            rows = await lab.proxy.journal.find(ids)
            return len(rows) == len(ids) and all(r.state in settled for r in rows)

        for _ in range(100):
            if await all_settled():
                break
            await asyncio.sleep(0.05)
        assert await all_settled()


# ------------------------------------------------------------------ review findings, kept as tests
LONG_BAD = "Уважаемый клиент! " + "Ваш заказ собран и передан в доставку. " * 3 + FRAUD


async def test_parts_of_a_blocked_message_sent_back_to_back_are_all_dropped(
    tmp_path: Path,
) -> None:
    """The last part was refused before the leading parts' rows were written: they were left
    'held' in the journal, and a restart sent the phishing text on."""
    async with proxy_lab(tmp_path) as lab:
        link, _ = await lab.aggregator()
        bad = parts("SHOP", "77021230000", LONG_BAD, ref=2)
        answers = [r.status for r in await asyncio.gather(*(link.request(p) for p in bad))]
        assert answers == [0] * (len(bad) - 1) + [0x66]
        await eventually(lambda: lab.proxy.stats.held_dropped == len(bad) - 1)
        for _ in range(50):
            counts = await lab.proxy.journal.counts()
            if counts.get("dropped") == len(bad) - 1:
                break
            await asyncio.sleep(0.05)
        assert counts.get("dropped") == len(bad) - 1 and "held" not in counts
    async with proxy_lab(tmp_path) as again:  # the same database: nothing to resume
        await asyncio.sleep(0.5)
        assert again.at_smsc == 0 and len(again.phones.received) == 0


async def test_a_late_part_of_a_blocked_message_is_refused_too(tmp_path: Path) -> None:
    async with proxy_lab(tmp_path) as lab:
        lab.proxy.reassembly_timeout = 0.5
        link, _ = await lab.aggregator()
        bad = parts("SHOP", "77021230001", LONG_BAD, ref=4)
        first = [(await link.request(p)).status for p in bad]
        assert first[-1] == 0x66
        await asyncio.sleep(1.0)  # past the reassembly timeout: the aggregator resends part 2
        assert (await link.request(bad[1])).status == 0x66
        await asyncio.sleep(1.0)
        assert lab.at_smsc == 0


async def test_text_given_twice_or_concatenation_given_twice_is_refused(tmp_path: Path) -> None:
    from smsc.constants import Tag
    from smsc.pdu import Tlv

    async with proxy_lab(tmp_path) as lab:
        link, _ = await lab.aggregator()
        both = submit("SHOP", B, HELLO)
        both.short_message = split_for_sms(SHORT_FRAUD, ref=1)[1][0]
        both.tlvs = [Tlv(Tag.MESSAGE_PAYLOAD, split_for_sms(HELLO, ref=1)[1][0])]
        assert (await link.request(both)).status == 0xC4  # the SMSC could deliver either
        udh_and_sar = parts("SHOP", B, LONG_BAD, ref=5)[0]
        udh_and_sar.tlvs = [Tlv.of(Tag.SAR_MSG_REF_NUM, 77), Tlv.of(Tag.SAR_TOTAL_SEGMENTS, 2),
                            Tlv.of(Tag.SAR_SEGMENT_SEQNUM, 1)]  # fmt: skip
        assert (await link.request(udh_and_sar)).status == 0xC4
        await asyncio.sleep(0.3)
        assert lab.at_smsc == 0


async def test_submit_multi_lists_are_not_resubmissions_of_each_other_and_parts_join(
    tmp_path: Path,
) -> None:
    from smsc.pdu import SmeAddress, SubmitMulti

    coding, (body,) = split_for_sms(HELLO, ref=1)

    def multi(dests: list[str], **kw: object) -> SubmitMulti:
        return SubmitMulti(
            source_addr_ton=5,
            source_addr="SHOP",
            dest_addresses=[SmeAddress(1, 1, d) for d in dests],
            data_coding=coding,
            short_message=body,
            **kw,
        )  # type: ignore[arg-type]

    async with proxy_lab(tmp_path) as lab:
        link, _ = await lab.aggregator()
        one = await link.request(multi(["77020000001", "77020000002"]))
        two = await link.request(multi(["77020000003", "77020000004"]))
        assert one.message_id != two.message_id  # type: ignore[attr-defined]
        await eventually(lambda: lab.at_smsc == 4)
        # a long message as submit_multi parts is judged whole: its last part blocks
        answers = []
        for p in parts("SHOP", "77021230006", LONG_BAD, ref=10):
            m = multi(["77021230006"])
            m.esm_class, m.short_message = p.esm_class, p.short_message
            answers.append((await link.request(m)).status)
        assert answers[-1] == 0x66 and answers[:-1] == [0] * (len(answers) - 1)
        await asyncio.sleep(0.5)
        assert lab.at_smsc == 4


def test_a_rate_below_one_per_second_still_admits_one_at_a_time() -> None:
    from smsc.rate import TokenBucket

    bucket = TokenBucket(0.5)
    assert bucket.take() and not bucket.take()  # one now, the next in two seconds
    assert TokenBucket(0).take() and TokenBucket(0).take()  # 0: no limit


async def test_an_aggregator_overrunning_its_window_is_throttled_in_few_log_lines(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    async with proxy_lab(tmp_path) as lab:
        link, _ = await lab.aggregator(window=300)  # the account's window is 50
        caplog.set_level(logging.WARNING, logger="fraudgate.smpp")
        answers = await asyncio.gather(
            *(link.request(submit("SHOP", f"7702{i:07d}", f"{HELLO} {i}")) for i in range(300))
        )
        assert any(a.status == 0x58 for a in answers)  # beyond the window: throttled
        lines = [r for r in caplog.records if "window" in r.getMessage()]
        assert 1 <= len(lines) <= 2, len(lines)  # not one per refused PDU


async def test_a_message_still_at_the_smsc_is_replaced_queried_and_cancelled_by_our_id(
    tmp_path: Path,
) -> None:
    """query_sm / cancel_sm / replace_sm go to the SMSC with its id and come back with ours."""
    from smsc.constants import MessageState
    from smsc.pdu import CancelSm, QuerySm, ReplaceSm

    async with proxy_lab(tmp_path) as lab:
        lab.phones.status_of = lambda pdu: 0x58  # the handset is busy: the SMSC keeps it
        link, _ = await lab.aggregator()
        our_id = (await link.request(submit("SHOP", B, HELLO))).message_id  # type: ignore[attr-defined]
        await eventually(lambda: lab.proxy.forwarder.smsc_id(our_id) is not None)
        known = lab.proxy.forwarder.smsc_id(our_id)
        assert known is not None
        smsc_id = known[0]
        assert smsc_id != our_id and lab.smsc.messages[smsc_id].state == MessageState.ENROUTE
        new_text = split_for_sms("Заказ №5512 перенесён на завтра.", ref=1)[1][0]
        replace = ReplaceSm(message_id=our_id, source_addr="SHOP", source_addr_ton=5,
                            short_message=new_text)  # fmt: skip
        assert (await link.request(replace)).status == 0
        assert lab.smsc.messages[smsc_id].short_message == new_text
        cancel = CancelSm(message_id=our_id, source_addr="SHOP", source_addr_ton=5,
                          destination_addr=B)  # fmt: skip
        assert (await link.request(cancel)).status == 0
        assert lab.smsc.messages[smsc_id].state == MessageState.DELETED
        q = await link.request(QuerySm(message_id=our_id, source_addr="SHOP", source_addr_ton=5))
        assert q.status == 0 and q.message_id == our_id  # type: ignore[attr-defined]
        assert q.message_state == MessageState.DELETED  # type: ignore[attr-defined]
