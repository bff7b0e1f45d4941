"""ESME client and supervisor over real loopback TCP (and TLS) against the project's server."""

from __future__ import annotations

import asyncio
import logging
import ssl
import subprocess
from pathlib import Path

import pytest
import raw_smpp
from waiting import eventually

from smsc.backoff import Backoff
from smsc.client import EsmeClient, EsmeConfig, EsmeSupervisor, TlsConfig
from smsc.constants import Status
from smsc.link import WRITE_HIGH_WATER, BindError, Link
from smsc.pdu import BindTransceiver, DeliverSm, EnquireLink, Pdu, SubmitSm
from smsc.server import SmppServer
from smsc.session import BindType, SessionConfig


class Smsc:
    """Accepts password 'pw', answers submit_sm with message_id = its sequence."""

    def on_bind(self, link: Link, pdu: Pdu, bind_type: BindType) -> None:
        if getattr(pdu, "password", "") == "pw":
            link.accept_bind(pdu, "test-smsc")
        else:
            link.reject_bind(pdu, 0x0E)

    def on_request(self, link: Link, pdu: Pdu) -> None:
        link.respond(pdu.response(message_id=f"m{pdu.sequence}"))

    def on_closed(self, link: Link, reason: str, clean: bool) -> None:
        pass


class Esme:
    def on_bind(self, link: Link, pdu: Pdu, bind_type: BindType) -> None:
        raise AssertionError("an ESME is never asked to accept a bind")

    def on_request(self, link: Link, pdu: Pdu) -> None:
        link.respond(pdu.response())

    def on_closed(self, link: Link, reason: str, clean: bool) -> None:
        pass


def _submit() -> SubmitSm:
    return SubmitSm(source_addr="77010000001", destination_addr="77010000002", short_message=b"x")


async def test_context_manager_binds_submits_and_unbinds_cleanly() -> None:
    async with SmppServer(Smsc, port=0) as srv:
        async with EsmeClient(EsmeConfig("127.0.0.1", srv.port, "u", "pw"), Esme()) as link:
            resp = await link.request(_submit())
            assert resp.status == 0 and resp.message_id == f"m{resp.sequence}"  # type: ignore[attr-defined]
        assert await link.closed == ("unbound", True)


async def test_wrong_password_raises_bind_error_with_the_status() -> None:
    async with SmppServer(Smsc, port=0) as srv:
        with pytest.raises(BindError) as err:
            async with EsmeClient(EsmeConfig("127.0.0.1", srv.port, "u", "bad"), Esme()):
                pass
        assert err.value.status == 0x0E


async def test_supervisor_logs_once_down_once_back_and_rebinds(
    caplog: pytest.LogCaptureFixture, unused_tcp_port: int
) -> None:
    caplog.set_level(logging.DEBUG, logger="fraudgate.smpp.client")
    port = unused_tcp_port
    cfg = EsmeConfig("127.0.0.1", port, "u", "pw", connect_timeout=1.0)
    sup = EsmeSupervisor(cfg, Esme(), Backoff(initial=0.02, cap=0.1))
    async with SmppServer(Smsc, port=port):
        task = asyncio.create_task(sup.run())
        await sup.wait_bound(5)
        assert (await sup.request(_submit())).status == 0
        for link in list((sup.link and [sup.link]) or []):
            link.abort("test cuts the link")
    await asyncio.sleep(0.5)  # several failed reconnects while the server is away
    async with SmppServer(Smsc, port=port):
        link = await sup.wait_bound(5)
        await asyncio.sleep(0.05)
        assert (await sup.request(_submit())).status == 0
        sup.stop()
        await asyncio.wait_for(task, 5)
    assert sup.binds == 2
    assert link.closed.done() and link.closed.result()[1] is True  # unbound on stop
    down = [r for r in caplog.records if "link down" in r.getMessage()]
    back = [r for r in caplog.records if "link back" in r.getMessage()]
    retries = [r for r in caplog.records if "reconnect failed" in r.getMessage()]
    assert len(down) == 1 and down[0].levelno == logging.WARNING
    assert len(back) == 1 and back[0].levelno == logging.INFO
    assert retries and all(r.levelno == logging.DEBUG for r in retries)


def test_backoff_is_capped_exponential_with_jitter() -> None:
    b = Backoff(initial=1.0, cap=8.0, jitter=0.2)
    delays = [b.next_delay() for _ in range(8)]
    for got, base in zip(delays, [1, 2, 4, 8, 8, 8, 8, 8], strict=True):
        assert base * 0.8 <= got <= base * 1.2
    assert len({round(d, 6) for d in delays[3:]}) > 1  # jittered, not identical
    b.reset()
    assert b.next_delay() <= 1.2


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_tls_bind_and_submit(tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    async with SmppServer(Smsc, port=0, ssl_context=server_ctx) as srv:
        tls = TlsConfig(ca_file=str(cert), server_hostname="localhost")
        cfg = EsmeConfig("127.0.0.1", srv.port, "u", "pw", tls=tls)
        async with EsmeClient(cfg, Esme()) as link:
            assert link.transport is not None
            assert link.transport.get_extra_info("ssl_object") is not None
            assert (await link.request(_submit())).status == 0
        # an untrusted server certificate is refused
        with pytest.raises(ssl.SSLError):
            async with EsmeClient(
                EsmeConfig("127.0.0.1", srv.port, "u", "pw", tls=TlsConfig()), Esme()
            ):
                pass


async def test_an_oversized_pdu_closes_the_session_with_a_clear_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="fraudgate.smpp")
    async with SmppServer(Smsc, port=0) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write((10_000_000).to_bytes(4, "big") + bytes(12))  # command_length 10 MB
        await writer.drain()
        nack = await asyncio.wait_for(reader.read(16), 5)
        assert nack[4:12] == bytes.fromhex("80000000 00000002")  # generic_nack ESME_RINVCMDLEN
        assert await asyncio.wait_for(reader.read(), 5) == b""  # then closed
        writer.close()
    closed = [r for r in caplog.records if "closed: command_length 10000000" in r.getMessage()]
    assert closed and closed[0].levelno == logging.WARNING
    assert "limit" in closed[0].getMessage()


class LateEsme:
    """Answers each deliver_sm 0.1 s later (as the gateway does once its verdict is recorded)."""

    def __init__(self) -> None:
        self.got: list[bytes] = []

    def on_bind(self, link: Link, pdu: Pdu, bind_type: BindType) -> None:  # pragma: no cover
        raise AssertionError("an ESME is never asked to accept a bind")

    def on_request(self, link: Link, pdu: Pdu) -> None:
        assert isinstance(pdu, DeliverSm)
        self.got.append(pdu.short_message)
        link.loop.call_later(0.1, link.respond, pdu.response())

    def on_closed(self, link: Link, reason: str, clean: bool) -> None:
        pass


async def test_an_smsc_repeating_a_pending_sequence_number_gets_both_answers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A misbehaving SMSC sends two deliver_sm under one sequence_number before the first is
    answered: the repeat is answered ESME_RSYSERR at once (a temporary error: the SMSC retries
    it under a fresh number), the first gets the application's answer, nothing raises."""
    answers: asyncio.Queue[Pdu | None] = asyncio.Queue()

    async def bad_smsc(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        bind = await raw_smpp.read_pdu(reader)
        assert bind is not None
        writer.write(bind.response(system_id="bad-smsc").encode())
        for text in (b"first", b"again"):
            writer.write(DeliverSm(sequence=7, source_addr="1", destination_addr="2",
                                   short_message=text).encode())  # fmt: skip
        for _ in range(2):
            await answers.put(await raw_smpp.read_pdu(reader))
        await raw_smpp.read_pdu(reader)  # the client's unbind
        writer.close()

    server = await asyncio.start_server(bad_smsc, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    handler = LateEsme()
    async with server, EsmeClient(EsmeConfig("127.0.0.1", port, "u", "pw"), handler) as link:
        got = [await asyncio.wait_for(answers.get(), 5) for _ in range(2)]
        link.abort("test done")
    assert [(p.sequence, p.status) for p in got if p] == [(7, Status.ESME_RSYSERR), (7, 0)]
    assert handler.got == [b"first"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


class SlowSmsc(Smsc):
    """Decides binds 0.05 s after they arrive (an A2P proxy asking its upstream first)."""

    def on_bind(self, link: Link, pdu: Pdu, bind_type: BindType) -> None:
        link.loop.call_later(0.05, super().on_bind, link, pdu, bind_type)


@pytest.mark.parametrize("password", ["pw", "bad"])
async def test_a_bind_answered_after_the_peer_left_logs_no_traceback(
    caplog: pytest.LogCaptureFixture, password: str
) -> None:
    caplog.set_level(logging.DEBUG)
    async with SmppServer(SlowSmsc, port=0) as srv:
        for _ in range(3):
            _, writer = await raw_smpp.connect(srv.port)
            writer.write(BindTransceiver(sequence=1, system_id="u", password=password).encode())
            await writer.drain()
            writer.close()
        await asyncio.sleep(0.2)
        assert not srv.links
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    quiet = [r for r in caplog.records if "closed before it was answered" in r.getMessage()]
    assert len(quiet) == 3 and all(r.levelno == logging.DEBUG for r in quiet)


async def test_an_unbound_peer_that_never_reads_is_dropped_at_the_high_water_mark(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Without the limit on PDUs before a bind, an unbound client flooding requests and never
    reading is still dropped: the first time the write buffer passes the high-water mark."""
    config = SessionConfig(max_pdus_before_bind=None)
    async with SmppServer(Smsc, port=0, session_config=config) as srv:
        sock = raw_smpp.non_reading_socket()
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", srv.port))
        await eventually(lambda: any(link.transport for link in srv.links))
        (link,) = srv.links
        raw_smpp.shrink_send_buffer(link.transport)
        peak = 0

        def sample() -> None:
            nonlocal peak
            if link.transport is not None:
                peak = max(peak, link.transport.get_write_buffer_size())

        _, closed = await raw_smpp.flood(
            sock, EnquireLink(sequence=3).encode() * 1000, 10.0, sample
        )
        sock.close()
    assert closed
    assert peak <= WRITE_HIGH_WATER + 64 * 1024, peak
    reason, _ = await link.closed
    assert reason.startswith(f"write buffer over {WRITE_HIGH_WATER} bytes before a bind")
    assert len([r for r in caplog.records if "before a bind" in r.getMessage()]) == 1


async def test_wait_bound_does_not_return_a_link_that_closed_unnoticed() -> None:
    """Between a link's close and its supervisor noticing it, wait_bound used to hand out the
    closed link without suspending: a caller looping on it never let the supervisor run."""

    class Nobody:
        def on_bind(self, *args: object) -> None: ...
        def on_request(self, *args: object) -> None: ...
        def on_closed(self, *args: object) -> None: ...

    sup = EsmeSupervisor(EsmeConfig("127.0.0.1", 1, "gw", "pw"), Nobody())  # type: ignore[arg-type]
    from smsc.session import Role

    link = Link(Role.ESME, Nobody())  # type: ignore[arg-type]
    link.session.connection_lost("cut")
    sup.link = link
    sup._bound.set()  # the supervisor's view: still bound
    with pytest.raises(TimeoutError):
        await sup.wait_bound(0.1)
