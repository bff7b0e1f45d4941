"""Real services for tests: a PostgreSQL cluster and Mosquitto brokers, started on free ports.

Register with `pytest_plugins = ["fixtures_services"]` (tests/ is on sys.path under pytest's
default import mode). Fixtures:

    postgres_server   session: one PostgreSQL cluster, initdb'd in a temp dir; .stop()/.start()
    postgres_url      a fresh database on it: "postgresql+asyncpg://fraudgate@127.0.0.1:PORT/DB"
    mosquitto         a broker on 127.0.0.1 (anonymous), .host/.port, .stop()/.start()/.kill()
    mosquitto_factory start brokers with users (mosquitto_passwd) and/or TLS listeners
    redis_server      a redis-server on 127.0.0.1 (no persistence), .url, .stop()/.start()/.kill()
    tls_material      a CA, a server and a client certificate made with `openssl`

A missing binary FAILS the test (never skips): ./dev installs the Debian packages `postgresql`
(server binaries under /usr/lib/postgresql/N/bin), `mosquitto` (with mosquitto_passwd) and
`openssl`. PostgreSQL refuses to run as root: as root, the cluster runs as the `postgres` user
(created by the Debian package) or else `nobody`, in a temp dir owned by that user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

# -- helpers ---------------------------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_port(host: str, port: int, timeout: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(0.2)
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.02)
    raise RuntimeError(f"nothing listening on {host}:{port} after {timeout} s")


def require_binary(name: str, package: str, candidates: Sequence[str] = ()) -> str:
    for path in candidates:
        if os.access(path, os.X_OK):
            return path
    found = shutil.which(name)
    if found:
        return found
    pytest.fail(
        f"{name!r} not found (Debian package {package}); run ./dev setup, which installs it",
        pytrace=False,
    )


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop_process(proc: subprocess.Popen[bytes] | None, sig: int, timeout: float = 10.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


# -- PostgreSQL ------------------------------------------------------------------------------------


def postgres_bindir() -> Path:
    """The directory of initdb/postgres: $FRAUDGATE_PG_BINDIR, the newest Debian
    /usr/lib/postgresql/N/bin, or wherever `initdb` is on PATH; fails the test otherwise."""
    env = os.environ.get("FRAUDGATE_PG_BINDIR")
    candidates = [Path(env)] if env else []
    debian = Path("/usr/lib/postgresql")
    if debian.is_dir():
        versions = [p for p in debian.iterdir() if re.fullmatch(r"\d+(\.\d+)?", p.name)]
        versions.sort(key=lambda p: float(p.name), reverse=True)
        candidates += [p / "bin" for p in versions]
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for bindir in candidates:
        if all(os.access(bindir / b, os.X_OK) for b in ("initdb", "postgres", "psql")):
            return bindir
    pytest.fail(
        "PostgreSQL server binaries (initdb, postgres, psql) not found: install the Debian "
        "package `postgresql` (./dev setup does) or set FRAUDGATE_PG_BINDIR",
        pytrace=False,
    )


@dataclass
class RunAs:
    """The unprivileged user a server runs as when the tests run as root (None: ourselves)."""

    user: str | None
    uid: int
    gid: int

    @classmethod
    def for_postgres(cls) -> RunAs:
        if os.geteuid() != 0:
            return cls(None, os.getuid(), os.getgid())
        for name in ("postgres", "nobody"):
            try:
                entry = pwd.getpwnam(name)
            except KeyError:
                continue
            return cls(name, entry.pw_uid, entry.pw_gid)
        pytest.fail("running as root and neither user postgres nor nobody exists", pytrace=False)

    @property
    def uid_arg(self) -> int | None:  # subprocess' user=, group=, extra_groups= (None: keep)
        return None if self.user is None else self.uid

    @property
    def gid_arg(self) -> int | None:
        return None if self.user is None else self.gid

    @property
    def groups_arg(self) -> list[int] | None:
        return None if self.user is None else []  # drop root's supplementary groups


class PostgresServer:
    """A throw-away PostgreSQL cluster: initdb in a temp dir, `postgres` on a free loopback port,
    trust authentication for the superuser `fraudgate`. stop() and start() keep the port."""

    superuser = "fraudgate"
    host = "127.0.0.1"

    def __init__(
        self, bindir: Path, *, port: int | None = None, settings: dict[str, str] | None = None
    ) -> None:
        self.bindir = bindir
        self.settings = dict(settings or {})
        self.run_as = RunAs.for_postgres()
        self.port = port or free_port()
        # As root the server runs as another user, who must reach the directory: /tmp, not a
        # $TMPDIR that may sit inside root's home.
        parent = "/tmp" if self.run_as.user is not None and os.path.isdir("/tmp") else None
        self.base = Path(tempfile.mkdtemp(prefix="fraudgate-pg-", dir=parent))
        self.data = self.base / "data"
        self.log = self.base / "postgres.log"
        self.proc: subprocess.Popen[bytes] | None = None
        if self.run_as.user is not None:
            os.chown(self.base, self.run_as.uid, self.run_as.gid)

    def _env(self) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"}

    def _run(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args,
            cwd=self.base,
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            user=self.run_as.uid_arg,
            group=self.run_as.gid_arg,
            extra_groups=self.run_as.groups_arg,
        )

    def initdb(self) -> None:
        result = self._run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                self.superuser,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ]
        )
        if result.returncode != 0:
            pytest.fail(
                f"initdb failed (as {self.run_as.user or 'current user'}):\n"
                f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}",
                pytrace=False,
            )

    def start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        log = self.log.open("ab")
        if self.run_as.user is not None:
            os.chown(self.log, self.run_as.uid, self.run_as.gid)
        try:
            self.proc = subprocess.Popen(
                [
                    str(self.bindir / "postgres"),
                    "-D",
                    str(self.data),
                    "-p",
                    str(self.port),
                    "-c",
                    f"listen_addresses={self.host}",
                    "-c",
                    f"unix_socket_directories={self.base}",
                    "-c",
                    "max_connections=40",
                    "-c",
                    "shared_buffers=32MB",
                    "-c",
                    "log_min_messages=warning",
                    *(arg for k, v in self.settings.items() for arg in ("-c", f"{k}={v}")),
                ],
                cwd=self.base,
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in the terminal is not the server's business
                user=self.run_as.uid_arg,
                group=self.run_as.gid_arg,
                extra_groups=self.run_as.groups_arg,
            )
        finally:
            log.close()
        self._wait_ready(30.0)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                pytest.fail(f"postgres exited ({self.proc.returncode}):\n{_tail(self.log)}")
            probe = self.psql("SELECT 1", check=False)
            if probe.returncode == 0:
                return
            time.sleep(0.05)
        pytest.fail(f"postgres not ready after {timeout} s:\n{_tail(self.log)}")

    def _processes(self) -> list[int]:
        """The postmaster and every backend it forked (from /proc)."""
        if self.proc is None:
            return []
        pids = [self.proc.pid]
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == self.proc.pid:
                pids.append(int(entry.name))
        return pids

    def freeze(self) -> None:
        """SIGSTOP the server and its backends: a database that hangs without closing its
        connections (a stuck disk, a paused VM), the worst case for a client."""
        for pid in self._processes():
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self._processes():
            os.kill(pid, signal.SIGCONT)

    def stop(self) -> None:
        """Fast shutdown (SIGINT): sessions are disconnected, the port closes."""
        _stop_process(self.proc, signal.SIGINT)
        self.proc = None

    def psql(
        self, sql: str, *, db: str = "postgres", check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [
                str(self.bindir / "psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                self.superuser,
                "-d",
                db,
                "-c",
                sql,
            ],
            env={**self._env(), "PGCONNECT_TIMEOUT": "3"},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"psql {sql!r} failed: {result.stderr.strip()}")
        return result

    def create_database(self, name: str | None = None) -> str:
        name = name or f"t_{uuid.uuid4().hex[:12]}"
        self.psql(f'CREATE DATABASE "{name}"')
        return name

    def url(self, db: str = "postgres") -> str:
        return f"postgresql+asyncpg://{self.superuser}@{self.host}:{self.port}/{db}"

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    # A throw-away cluster: no fsync (commits, CREATE DATABASE and the shutdown checkpoint
    # would otherwise flush to disk for nothing). Benchmarks run against a durable cluster.
    server = PostgresServer(postgres_bindir(), settings={"fsync": "off"})
    try:
        server.initdb()
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A new empty database on the session's PostgreSQL (restarted first if a test stopped it)."""
    postgres_server.start()
    return postgres_server.url(postgres_server.create_database())


# -- TLS material ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsMaterial:
    ca: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path  # a CA that signed nothing here: trusting it must fail the handshake


def make_tls_material(directory: Path) -> TlsMaterial:
    """A test CA (EC P-256), a server certificate for 127.0.0.1/localhost and a client
    certificate, all made with the `openssl` command line; valid two days."""
    openssl = require_binary("openssl", "openssl")
    directory.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        result = subprocess.run(
            [openssl, *args], cwd=directory, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"openssl {' '.join(args)} failed: {result.stderr}")

    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    for name in ("ca", "other-ca"):
        run(
            "req", "-x509", *ec, "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2",
            "-subj", f"/CN=fraudgate test {name}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-addext", "subjectKeyIdentifier=hash",
        )  # fmt: skip
    leaves = {
        "server": ("serverAuth", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
        "client": ("clientAuth", "subjectAltName=DNS:fraudgate-client"),
    }
    for name, (usage, san) in leaves.items():
        (directory / f"{name}.ext").write_text(
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyAgreement\n"
            f"extendedKeyUsage={usage}\n{san}\n"
            "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n"
        )
        run("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        run(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext",
        )  # fmt: skip
    return TlsMaterial(
        ca=directory / "ca.crt",
        ca_key=directory / "ca.key",
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
        client_cert=directory / "client.crt",
        client_key=directory / "client.key",
        other_ca=directory / "other-ca.crt",
    )


@pytest.fixture
def tls_material(tmp_path: Path) -> TlsMaterial:
    return make_tls_material(tmp_path / "tls")


class _ServerProcess:
    """A server process on a free loopback port: start() (output to `log`), stop() (SIGTERM),
    kill() (SIGKILL), start() again on the same port for outage tests."""

    host = "127.0.0.1"
    name = "server"
    dir: Path
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        if self.running:
            return
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command(), cwd=self.dir, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        try:
            wait_for_port(self.host, self.port, 10.0, self.proc)
        except RuntimeError as e:
            _stop_process(self.proc, signal.SIGKILL)
            pytest.fail(f"{self.name} did not start: {e}\n{_tail(self.log)}", pytrace=False)

    def stop(self) -> None:
        """Orderly shutdown (SIGTERM): a broker saves its persistent sessions for start()."""
        _stop_process(self.proc, signal.SIGTERM)
        self.proc = None

    def kill(self) -> None:
        _stop_process(self.proc, signal.SIGKILL)
        self.proc = None


# -- Mosquitto -------------------------------------------------------------------------------------


def mosquitto_binary() -> str:
    return require_binary("mosquitto", "mosquitto", ["/usr/sbin/mosquitto"])


class MosquittoBroker(_ServerProcess):
    """A mosquitto process with a generated config on a free loopback port. stop() (SIGTERM,
    session state saved), kill() (SIGKILL) and start() again on the same port for outage tests.

    With `users`, anonymous clients are refused and a password file is made with
    mosquitto_passwd; with `tls`, the listener speaks TLS only (client certificates required
    when `require_client_cert`)."""

    name = "mosquitto"

    def __init__(
        self,
        directory: Path,
        *,
        users: dict[str, str] | None = None,
        tls: TlsMaterial | None = None,
        require_client_cert: bool = False,
        persistence: bool = True,
    ) -> None:
        self.binary = mosquitto_binary()
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.users = dict(users or {})
        self.tls = tls
        self.require_client_cert = require_client_cert
        self.persistence = persistence
        self.log = self.dir / "mosquitto.log"
        self.conf = self.dir / "mosquitto.conf"
        self.passwd = self.dir / "passwd"
        self.proc: subprocess.Popen[bytes] | None = None
        if self.users:
            self._write_passwords()
        self._write_config()

    def _write_passwords(self) -> None:
        tool = require_binary("mosquitto_passwd", "mosquitto", ["/usr/bin/mosquitto_passwd"])
        self.passwd.unlink(missing_ok=True)
        self.passwd.touch(mode=0o600)
        for user, password in self.users.items():
            subprocess.run(
                [tool, "-b", str(self.passwd), user, password],
                check=True,
                capture_output=True,
                timeout=10,
            )

    def _write_config(self) -> None:
        lines = [
            "per_listener_settings false",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.dir}/",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            "log_timestamp true",
            f"allow_anonymous {'false' if self.users else 'true'}",
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # keep reading files in this root-owned temp dir
        if self.users:
            lines.append(f"password_file {self.passwd}")
        lines.append(f"listener {self.port} {self.host}")
        if self.tls is not None:
            lines += [
                f"cafile {self.tls.ca}",
                f"certfile {self.tls.server_cert}",
                f"keyfile {self.tls.server_key}",
                f"require_certificate {'true' if self.require_client_cert else 'false'}",
            ]
        self.conf.write_text("\n".join(lines) + "\n")

    def add_user(self, user: str, password: str) -> None:
        """Add (or change) a user and have the running broker reload its password file."""
        self.users[user] = password
        self._write_passwords()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGHUP)
            time.sleep(0.2)

    def command(self) -> list[str]:
        return [self.binary, "-c", str(self.conf)]

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@pytest.fixture
def mosquitto_factory(tmp_path: Path) -> Iterator[Callable[..., MosquittoBroker]]:
    """`mosquitto_factory(users=..., tls=..., require_client_cert=...)` starts a broker."""
    brokers: list[MosquittoBroker] = []

    def make(**options: object) -> MosquittoBroker:
        broker = MosquittoBroker(tmp_path / f"mosquitto-{len(brokers)}", **options)  # type: ignore[arg-type]
        brokers.append(broker)
        broker.start()
        return broker

    try:
        yield make
    finally:
        for broker in brokers:
            with contextlib.suppress(Exception):
                broker.stop()


@pytest.fixture
def mosquitto(mosquitto_factory: Callable[..., MosquittoBroker]) -> MosquittoBroker:
    """An anonymous broker on 127.0.0.1 and a free port (stop()/start() keep the port)."""
    return mosquitto_factory()


# -- Redis -----------------------------------------------------------------------------------------


class RedisServer(_ServerProcess):
    """A redis-server process (Debian's) on a free loopback port, no persistence. stop() (SIGTERM),
    kill() (SIGKILL) and start() again on the same port for outage tests; `url` for the gateway."""

    name = "redis-server"

    def __init__(self, directory: Path) -> None:
        self.binary = require_binary("redis-server", "redis-server", ["/usr/bin/redis-server"])
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log = self.dir / "redis.log"
        self.proc = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def command(self) -> list[str]:
        return [self.binary, "--port", str(self.port), "--bind", self.host, "--save", "",
                "--appendonly", "no", "--dir", str(self.dir), "--daemonize", "no"]  # fmt: skip


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh redis-server on 127.0.0.1 and a free port (stop()/start() keep the port)."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


__all__ = [
    "MosquittoBroker",
    "PostgresServer",
    "RedisServer",
    "TlsMaterial",
    "free_port",
    "make_tls_material",
    "mosquitto",
    "mosquitto_factory",
    "postgres_server",
    "postgres_url",
    "redis_server",
    "tls_material",
]
