"""`fraudgate listen`: bind to an SMSC and print every message it delivers, one line each.

    fraudgate listen --smsc 127.0.0.1:2775 --account phones:secret [--bind transceiver]

Every deliver_sm / data_sm is answered with status 0 as it arrives. Concatenated messages are
reassembled by `smsc.sms.SmsAssembler`, whichever way they were split: a UDH (esm_class UDHI,
TS 23.040 §9.2.3.24) or the sar_* TLVs (SMPP 3.4 §5.3.2.22-24); a message_payload TLV carries
the whole text (§5.3.2.32). Parts still missing when the reassembly timeout passes are printed
with what did arrive, marked INCOMPLETE. Delivery receipts (esm_class 0x04 and a text that
parses as Appendix B) are printed as receipts. The bind is kept up by `EsmeSupervisor`, which
reconnects with backoff; pending parts survive a reconnect.

`MessagePrinter` is the reusable part: a `LinkHandler` with an `on_message` hook, so that the
demo and tests can count what arrives.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TextIO

from simulators.traffic import parse_account, parse_smsc
from smsc.client import EsmeConfig, EsmeSupervisor
from smsc.constants import Status
from smsc.link import Link
from smsc.pdu import AlertNotification, DataSm, DeliverSm, Pdu, SmppError
from smsc.receipt import DeliveryReceipt, receipt_in
from smsc.session import BindType, SessionConfig
from smsc.sms import Sms, SmsAssembler

__all__ = ["DeliveryReceipt", "MessagePrinter", "ReceivedMessage", "configure", "run"]

log = logging.getLogger("fraudgate.listen")

Short = DeliverSm | DataSm


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """One message as received: whole, reassembled, incomplete, or a delivery receipt."""

    received_at: datetime  # local time of the part that completed it (or of the timeout)
    command: str  # "deliver_sm" or "data_sm"
    source: str
    source_ton: int
    source_npi: int
    destination: str
    dest_ton: int
    dest_npi: int
    data_coding: int
    esm_class: int
    text: str
    parts: int = 1  # parts received
    total: int = 1  # parts announced
    missing: tuple[int, ...] = ()
    via: str = ""  # "udh", "sar", "payload" or "" for a single short_message
    decode_errors: tuple[str, ...] = ()
    receipt: DeliveryReceipt | None = None

    @property
    def complete(self) -> bool:
        return not self.missing

    @property
    def kind(self) -> str:
        """'receipt', 'incomplete' or 'message'."""
        if self.receipt is not None:
            return "receipt"
        return "message" if self.complete else "incomplete"

    def line(self) -> str:
        """The one printed line."""
        stamp = self.received_at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        src = _show(self.source, self.source_ton)
        dst = _show(self.destination, self.dest_ton)
        if self.receipt is not None:
            r = self.receipt
            return (
                f"{stamp} RECEIPT {src} -> {dst} id={r.message_id} stat={r.stat or '?'} "
                f"err={r.err or '?'}"
            )
        mark = f" [{self.via}]" if self.via else ""
        if self.total > 1:
            mark = f" [{self.parts}/{self.total} {self.via}]"
        if not self.complete:
            missing = ",".join(map(str, self.missing))
            mark = f" INCOMPLETE [{self.parts}/{self.total} {self.via}, missing {missing}]"
        text = json.dumps(self.text, ensure_ascii=False)
        errors = f" ({'; '.join(self.decode_errors)})" if self.decode_errors else ""
        return (
            f"{stamp} {self.command} {src} -> {dst} dc=0x{self.data_coding:02X}{mark} "
            f"{text}{errors}"
        )


def _show(address: str, ton: int) -> str:
    return f"+{address}" if ton == 1 and address.isdigit() else address


class MessagePrinter:
    """A LinkHandler for a receiver / transceiver: answers, reassembles, prints.

    `out=None` prints nothing (counting only); `on_message` is called with every
    `ReceivedMessage`, receipts and incomplete messages included. `counts` tallies them by
    kind. The same printer may serve successive links (a supervisor's reconnects); call
    `flush()` at the end to hand back what is still incomplete.
    """

    def __init__(
        self,
        *,
        out: TextIO | None = sys.stdout,
        on_message: Callable[[ReceivedMessage], None] | None = None,
        reassembly_timeout: float = 30.0,
        max_pending: int = 10_000,
    ) -> None:
        self.out = out
        self.on_message = on_message
        self.reassembly_timeout = reassembly_timeout
        self.max_pending = max_pending
        self._assembler = SmsAssembler(timeout=reassembly_timeout, max_pending=max_pending)
        self._timer: asyncio.TimerHandle | None = None
        self.counts: dict[str, int] = {"parts": 0, "message": 0, "incomplete": 0, "receipt": 0}

    # ------------------------------------------------------------------ LinkHandler
    def on_request(self, link: Link, pdu: Pdu) -> None:
        if isinstance(pdu, DeliverSm | DataSm):
            link.respond(pdu.response())  # status 0 at once, whatever the content
            self.counts["parts"] += 1
            try:
                self._handle(pdu)
            except Exception:  # a printing bug must not stop the answering
                log.exception("could not handle %s seq %d", pdu.name, pdu.sequence)
        elif isinstance(pdu, AlertNotification):  # no response exists (§4.12.1)
            log.info("alert_notification: %s is available again", pdu.source_addr)
        else:
            with contextlib.suppress(SmppError):
                link.respond(pdu.response(status=Status.ESME_RINVCMDID))

    def on_bind(self, link: Link, pdu: Pdu, bind_type: BindType) -> None:  # pragma: no cover
        pass  # ESME side: never asked

    def on_closed(self, link: Link, reason: str, clean: bool) -> None:
        log.log(logging.INFO if clean else logging.WARNING, "%s: closed: %s", link.name, reason)

    # ------------------------------------------------------------------ handling
    def _handle(self, pdu: Short) -> None:
        loop = asyncio.get_running_loop()
        sms = self._assembler.feed(pdu, loop.time())
        if sms is not None:
            self._emit(_received(sms))
        self._expire()

    def _expire(self) -> None:
        """Hand back timed-out messages and re-arm the timer for the next deadline."""
        loop = asyncio.get_running_loop()
        for incomplete in self._assembler.handle_timer(loop.time()):
            self._emit(_received(incomplete))
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self._assembler.next_deadline()
        if deadline is not None:
            self._timer = loop.call_at(deadline, self._expire)

    def flush(self) -> None:
        """Print every message still waiting for parts, as INCOMPLETE (call at shutdown)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for incomplete in self._assembler.handle_timer(float("inf")):
            self._emit(_received(incomplete))
        # the old assembler's clock is now infinite: start a fresh one
        self._assembler = SmsAssembler(
            timeout=self.reassembly_timeout, max_pending=self.max_pending
        )

    @property
    def pending(self) -> int:
        """Concatenated messages waiting for parts."""
        return self._assembler.pending

    def _emit(self, message: ReceivedMessage) -> None:
        self.counts[message.kind] += 1
        if self.out is not None:
            print(message.line(), file=self.out, flush=True)
        if self.on_message is not None:
            self.on_message(message)


def _received(sms: Sms) -> ReceivedMessage:
    first = sms.pdus[0]
    receipt = receipt_in(first)
    return ReceivedMessage(
        received_at=datetime.now().astimezone(),
        command="data_sm" if isinstance(first, DataSm) else "deliver_sm",
        source=sms.source,
        source_ton=sms.source_ton,
        source_npi=sms.source_npi,
        destination=sms.dest,
        dest_ton=sms.dest_ton,
        dest_npi=sms.dest_npi,
        data_coding=sms.data_coding,
        esm_class=sms.esm_class,
        text=sms.text,
        parts=len(sms.pdus),
        total=sms.total,
        missing=sms.missing,
        via=sms.via,
        decode_errors=tuple(e for e in sms.errors if not e.startswith("incomplete:")),
        receipt=receipt,
    )


# --------------------------------------------------------------------------------------------
# Command line


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = "Bind to an SMSC and print every message received, one line each."
    parser.add_argument("--smsc", required=True, type=parse_smsc, metavar="HOST:PORT")
    parser.add_argument("--account", required=True, type=parse_account, metavar="ID:PASSWORD")
    parser.add_argument(
        "--bind", choices=("receiver", "transceiver"), default="receiver", help="bind type"
    )
    parser.add_argument("--system-type", default="", help="bind system_type")
    parser.add_argument(
        "--reassembly-timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="print a concatenated message as INCOMPLETE when parts are missing after S "
        "seconds (default 30)",
    )


def run(args: argparse.Namespace) -> int:
    (host, port), (system_id, password) = args.smsc, args.account
    if not args.reassembly_timeout > 0:
        print("fraudgate listen: --reassembly-timeout must be positive", file=sys.stderr)
        return 2
    config = EsmeConfig(
        host=host,
        port=port,
        system_id=system_id,
        password=password,
        bind_type=BindType(args.bind),
        system_type=args.system_type,
        session=SessionConfig(),
        name=f"listen {system_id}@{host}:{port}",
    )
    printer = MessagePrinter(reassembly_timeout=args.reassembly_timeout)
    with contextlib.suppress(asyncio.CancelledError):
        asyncio.run(listen(config, printer))
    counts = printer.counts
    print(
        f"# {counts['message']} messages, {counts['incomplete']} incomplete, "
        f"{counts['receipt']} receipts ({counts['parts']} PDUs)",
        file=sys.stderr,
    )
    return 0


async def listen(
    config: EsmeConfig, printer: MessagePrinter, stop: asyncio.Event | None = None
) -> None:
    """Stay bound (reconnecting) until `stop` is set; then flush. Without a `stop` of the
    caller's, SIGINT / SIGTERM stop it (the command-line use)."""
    own_signals = stop is None
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    if own_signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)
    supervisor = EsmeSupervisor(config, printer)
    task = asyncio.ensure_future(supervisor.run())
    try:
        waiter = asyncio.ensure_future(stop.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        supervisor.stop()
        await task
    finally:
        printer.flush()
        if own_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.remove_signal_handler(sig)


if __name__ == "__main__":  # python -m simulators.listener ...
    _parser = argparse.ArgumentParser(prog="fraudgate listen")
    configure(_parser)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    sys.exit(run(_parser.parse_args()))
