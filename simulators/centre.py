"""A simulated National Bank anti-fraud centre: the other end of gateway.centre, over real HTTPS
with mutual TLS (docs/centre-api.md).

    async with CentreSimulator(certs) as centre:     # https://127.0.0.1:{centre.port}
        centre.fail_next(3, status=503)                # faults: 5xx for N requests,
        centre.ack_delay = 2.0                         #   slow acknowledgements,
        await centre.down(); await centre.up()         #   refused connections
        await centre.send_inbound(operator_url, report, repeat=2)   # duplicate deliveries

It de-duplicates operator reports by Idempotency-Key (a repeat is answered 200 with the first
ack_id), validates them against the report schema (400 with the failing paths) and keeps them in
`reports`. `make_certs(DIR)` (or `python -m simulators.centre make-certs DIR`) writes a lab PKI
with the `openssl` command line: a CA per party, server and client certificates for each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import ssl
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from gateway.centre.config import client_context
from gateway.centre.schema import report_errors
from gateway.centre.server import TlsHttpServer
from gateway.ids import new_id

# -- lab PKI ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CertSet:
    """Two parties, each with its own CA, a server certificate (127.0.0.1, localhost) and a
    client certificate. The centre trusts operator clients (operator CA) and the operator trusts
    centre clients (centre CA)."""

    directory: Path

    def path(self, name: str) -> Path:
        return self.directory / name

    @property
    def centre_ca(self) -> Path:
        return self.path("centre-ca.crt")

    @property
    def operator_ca(self) -> Path:
        return self.path("operator-ca.crt")

    def cert(self, party: str, role: str) -> tuple[Path, Path]:
        """(certificate, key) of `party` ("centre"/"operator") as `role` ("server"/"client")."""
        return self.path(f"{party}-{role}.crt"), self.path(f"{party}-{role}.key")


_EC = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


def make_certs(directory: Path, *, days: int = 30) -> CertSet:
    """Write a CA, a server and a client certificate for the centre and for the operator."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("openssl not found (Debian package openssl)")
    directory.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        done = subprocess.run(
            [openssl, *args], cwd=directory, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"openssl {args[0]} failed: {done.stderr.strip()}")

    for party in ("centre", "operator"):
        _make_ca(run, party, days)
        for role in ("server", "client"):
            _make_leaf(run, directory, party, role, days)
    return CertSet(directory)


def _make_ca(run: Any, party: str, days: int) -> None:
    ca_ext = (
        ("-addext", "basicConstraints=critical,CA:TRUE"),
        ("-addext", "keyUsage=critical,keyCertSign,cRLSign"),
    )
    run(
        "req", "-x509", *_EC, "-keyout", f"{party}-ca.key", "-out", f"{party}-ca.crt",
        "-days", str(days), "-subj", f"/CN=fraudgate lab {party} CA",
        *(arg for pair in ca_ext for arg in pair),
    )  # fmt: skip


def _make_leaf(run: Any, directory: Path, party: str, role: str, days: int) -> None:
    name = f"{party}-{role}"
    usage = "serverAuth" if role == "server" else "clientAuth"
    san = "IP:127.0.0.1,DNS:localhost" if role == "server" else f"DNS:{name}"
    (directory / f"{name}.ext").write_text(
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyAgreement\n"
        f"extendedKeyUsage={usage}\nsubjectAltName={san}\n"
    )
    run("req", *_EC, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
    run(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{party}-ca.crt", "-CAkey",
        f"{party}-ca.key", "-CAcreateserial", "-out", f"{name}.crt", "-days", str(days),
        "-extfile", f"{name}.ext",
    )  # fmt: skip


# -- the simulator ----------------------------------------------------------------------------


@dataclass
class Received:
    ack_id: str
    document: dict[str, Any]
    deliveries: int = 1


@dataclass
class Faults:
    fail_status: int = 503
    fail_remaining: int = 0
    ack_delay: float = 0.0
    failed: list[str] = field(default_factory=list)  # keys answered with a fault


class CentreSimulator:
    """The centre's HTTPS endpoint for operator reports, plus a client for its own reports."""

    def __init__(
        self,
        certs: CertSet,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        client_ca: Path | None = None,
    ) -> None:
        self.certs = certs
        self.reports: dict[str, Received] = {}  # by Idempotency-Key
        self.requests = 0
        self.faults = Faults()
        self.arrived = asyncio.Event()
        cert, key = certs.cert("centre", "server")
        self._server = TlsHttpServer(
            self._app(),
            cert=cert,
            key=key,
            client_ca=client_ca or certs.operator_ca,
            host=host,
            port=port,
            name="centre-simulator",
        )

    # -- control ------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def ack_delay(self) -> float:
        return self.faults.ack_delay

    @ack_delay.setter
    def ack_delay(self, seconds: float) -> None:
        self.faults.ack_delay = seconds

    def fail_next(self, n: int, *, status: int = 503) -> None:
        """Answer the next `n` reports with `status` (nothing stored)."""
        self.faults.fail_remaining = n
        self.faults.fail_status = status

    async def down(self) -> None:
        """Stop listening: connections are refused until up()."""
        await self._server.stop()

    async def up(self) -> None:
        await self._server.start()

    async def wait_for(self, count: int, timeout: float = 10.0) -> None:
        """Until `count` distinct reports are stored."""
        async with asyncio.timeout(timeout):
            while len(self.reports) < count:
                self.arrived.clear()
                await self.arrived.wait()

    async def __aenter__(self) -> Self:
        await self._server.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._server.stop()

    # -- receiving ----------------------------------------------------------------------------

    def _app(self) -> FastAPI:
        app = FastAPI(title="simulated anti-fraud centre", openapi_url=None)

        @app.post("/v1/reports")
        async def take(request: Request) -> JSONResponse:
            self.requests += 1
            return await self._take(request.headers.get("idempotency-key"), await request.body())

        return app

    async def _take(self, key: str | None, body: bytes) -> JSONResponse:
        if self.faults.fail_remaining > 0:
            self.faults.fail_remaining -= 1
            self.faults.failed.append(key or "")
            return JSONResponse({"error": "unavailable"}, status_code=self.faults.fail_status)
        if not key:
            return JSONResponse({"error": "missing Idempotency-Key"}, status_code=400)
        known = self.reports.get(key)
        if known is not None:  # a repeat: the first acknowledgement again, nothing stored
            known.deliveries += 1
            await asyncio.sleep(self.faults.ack_delay)
            return JSONResponse({"ack_id": known.ack_id, "duplicate": True}, status_code=200)
        try:
            doc = json.loads(body)
        except ValueError:
            return JSONResponse({"error": "bad_json", "paths": []}, status_code=400)
        problems = report_errors(doc)
        if isinstance(doc, dict) and doc.get("report_id") != key:
            problems.append("/report_id: differs from the Idempotency-Key")
        if problems:
            return JSONResponse({"error": "schema", "paths": problems}, status_code=400)
        self.reports[key] = Received(ack_id="nb-" + new_id(), document=doc)
        self.arrived.set()
        await asyncio.sleep(self.faults.ack_delay)  # stored, not yet acknowledged
        return JSONResponse({"ack_id": self.reports[key].ack_id}, status_code=202)

    # -- sending ------------------------------------------------------------------------------

    def client_context(self, *, trust: Path | None = None) -> ssl.SSLContext:
        """The centre's client TLS context: its client certificate, trusting the operator CA."""
        cert, key = self.certs.cert("centre", "client")
        return client_context(trust or self.certs.operator_ca, cert, key)

    async def send_inbound(
        self, operator_url: str, report: dict[str, Any], *, repeat: int = 1
    ) -> list[httpx.Response]:
        """POST `report` to the operator's endpoint `repeat` times (duplicate deliveries)."""
        async with httpx.AsyncClient(verify=self.client_context(), timeout=10) as client:
            return [
                await client.post(operator_url.rstrip("/") + "/v1/reports", json=report)
                for _ in range(repeat)
            ]


def inbound_report(
    numbers: Sequence[str], *, category: str = "fraud_calls", report_id: str | None = None
) -> dict[str, Any]:
    """A valid centre report about `numbers` (E.164 with '+')."""
    return {
        "schema_version": 1,
        "report_id": report_id or "nbk-" + new_id()[:16],
        "numbers": list(numbers),
        "category": category,
        "description": "complaints from bank clients: calls posing as the bank's security service",
        "reported_at": "2026-11-24T09:30:00Z",
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.centre")
    sub = parser.add_subparsers(dest="command", required=True)
    certs = sub.add_parser("make-certs", help="write a lab PKI for the centre link")
    certs.add_argument("directory", type=Path)
    certs.add_argument("--days", type=int, default=30)
    args = parser.parse_args(argv)
    made = make_certs(args.directory, days=args.days)
    for f in sorted(made.directory.glob("*.crt")):
        print(f)
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["CentreSimulator", "CertSet", "inbound_report", "make_certs"]
