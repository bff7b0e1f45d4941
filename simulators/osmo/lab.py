"""The Osmocom lab: osmo-hlr and osmo-msc from Debian's packages on loopback.

`Lab` starts both from the templates in `config/osmocom/` in a working directory of its own
(configs, logs, hlr.db, sms.db, the state file), waits until every port answers, and stops what
it started by pid. osmo-msc's SGs listener needs SCTP; where the kernel has none, a small
LD_PRELOAD shim (`sctp_shim.c`, built with gcc into the working directory, rebuilt only when its
source changes) hands it a TCP socket instead. On a kernel with SCTP nothing is preloaded.

osmo-hlr 1.5 and osmo-msc 1.9 bind their VTY, CTRL and GSUP ports at fixed numbers whatever the
config says, so one lab runs per machine: `start` takes an exclusive lock (flock) on
`/tmp/fraudgate-osmo-lab.lock` and hands the locked descriptor to the two processes, so the lock
lives exactly as long as they do — also when `fraudgate lab up --detach` has exited, and it is
gone the moment they die, however they die.

The state file `<workdir>/lab.json` names the pids and ports, so `fraudgate lab down` and
`status` work from another process. Processes started in the foreground die with their parent
(PR_SET_PDEATHSIG, through util-linux `setpriv`), so a test run killed hard leaves nothing
behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from string import Template
from types import TracebackType
from typing import IO, Any, Self

PROJECT_DIR = Path(__file__).resolve().parents[2]
TEMPLATES = PROJECT_DIR / "config" / "osmocom"
SHIM_SOURCE = Path(__file__).resolve().parent / "sctp_shim.c"
LOCK_PATH = Path("/tmp/fraudgate-osmo-lab.lock")
STATE_FILE = "lab.json"

# Fixed in osmo-hlr 1.5 / osmo-msc 1.9 (a port given in `line vty` / `ctrl` is ignored).
HLR_VTY, HLR_CTRL, HLR_GSUP, MSC_VTY, MSC_CTRL = 4258, 4259, 4222, 4254, 4255
FIXED_PORTS = {
    HLR_VTY: "osmo-hlr VTY",
    HLR_CTRL: "osmo-hlr CTRL",
    HLR_GSUP: "osmo-hlr GSUP",
    MSC_VTY: "osmo-msc VTY",
    MSC_CTRL: "osmo-msc CTRL",
}


class LabError(Exception):
    """The lab could not be started, is broken, or could not be stopped cleanly."""


@dataclass(frozen=True, slots=True)
class LabConfig:
    workdir: Path
    smpp_port: int = 2775
    sgs_port: int = 29118
    smpp_first: bool = False
    esme_system_id: str = "gw"
    esme_password: str = "secret"
    mcc: str = "001"
    mnc: str = "01"
    lac: int = 1
    host: str = "127.0.0.1"
    start_timeout: float = 10.0
    log_level: str = "info"  # osmo-msc's smpp, lsms, mm and sgs categories (debug shows PDUs)

    @property
    def ports(self) -> list[int]:
        """Every port the lab listens on: the fixed ones and SMPP, SGs."""
        return [*FIXED_PORTS, self.smpp_port, self.sgs_port]

    def __post_init__(self) -> None:
        for name in ("smpp_port", "sgs_port"):
            port = getattr(self, name)
            if not 0 < port < 65536 or port in FIXED_PORTS:
                raise LabError(f"{name}: {port} is not a usable port")
        if self.log_level not in ("debug", "info", "notice", "error"):
            raise LabError(f"log_level: {self.log_level!r} is not debug, info, notice or error")
        if self.smpp_port == self.sgs_port:
            raise LabError("smpp_port and sgs_port must differ")
        if not (self.mcc.isdigit() and len(self.mcc) == 3):
            raise LabError(f"mcc: {self.mcc!r} is not three digits")
        if not (self.mnc.isdigit() and len(self.mnc) in (2, 3)):
            raise LabError(f"mnc: {self.mnc!r} is not two or three digits")
        for name in ("esme_system_id", "esme_password"):
            value = getattr(self, name)
            if not value or len(value) > 15 or not value.isprintable() or " " in value:
                raise LabError(f"{name}: 1-15 printable characters without spaces")


@dataclass(slots=True)
class ProcessState:
    name: str
    pid: int
    argv: list[str]
    log: str


@dataclass(slots=True)
class LabState:
    """What `lab.json` holds: enough for `down` / `status` from another process."""

    workdir: str
    config: dict[str, Any]
    processes: list[ProcessState] = field(default_factory=list)
    shim: str = ""
    started_at: float = 0.0

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        tmp.replace(path)

    def lab_config(self) -> LabConfig:
        """The recorded settings (the ESME password is not recorded: the default stands in)."""
        try:
            return LabConfig(**{**self.config, "workdir": Path(self.workdir)})
        except TypeError as e:
            raise LabError(f"{self.workdir}/{STATE_FILE}: settings not understood ({e})") from e

    @classmethod
    def load(cls, path: Path) -> LabState:
        try:
            raw = json.loads(path.read_text())
            procs = [ProcessState(**p) for p in raw.pop("processes")]
            return cls(processes=procs, **raw)
        except (OSError, ValueError, TypeError, KeyError) as e:
            raise LabError(f"{path}: not a lab state file ({e})") from e


def kernel_has_sctp() -> bool:
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP)
    except OSError:
        return False
    s.close()
    return True


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.3) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect((host, port))
        except OSError:
            return False
    return True


def port_bindable(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def pid_alive(pid: int, name: str) -> bool:
    """True when `pid` runs and is the program `name` (a recycled pid is not ours)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        return False  # a zombie: dead, waiting for its parent to reap it
    argv0 = cmdline.split(b"\0", 1)[0].decode(errors="replace")
    return Path(argv0).name == name


def build_shim(workdir: Path) -> Path:
    """Compile the SCTP shim into `workdir` (kept, keyed by the source's hash)."""
    gcc = shutil.which("gcc")
    if gcc is None:
        raise LabError("gcc not found: it builds the SCTP shim (apt-get install gcc)")
    digest = hashlib.sha256(SHIM_SOURCE.read_bytes()).hexdigest()[:12]
    out = workdir / f"sctp_shim-{digest}.so"
    if out.exists():
        return out
    tmp = out.with_suffix(".tmp.so")
    result = subprocess.run(
        [gcc, "-shared", "-fPIC", "-O2", "-Wall", "-o", str(tmp), str(SHIM_SOURCE), "-ldl"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise LabError(f"building the SCTP shim failed:\n{result.stderr}")
    tmp.replace(out)
    return out


def render(template: str, cfg: LabConfig) -> str:
    values = {
        "host": cfg.host,
        "workdir": str(cfg.workdir),
        "smpp_port": str(cfg.smpp_port),
        "sgs_port": str(cfg.sgs_port),
        "mcc": cfg.mcc,
        "mnc": cfg.mnc,
        "log_level": cfg.log_level,
        "esme_system_id": cfg.esme_system_id,
        "esme_password": cfg.esme_password,
        "smpp_first_line": " smpp-first" if cfg.smpp_first else " ! smpp-first off",
    }
    path = TEMPLATES / template
    try:
        return Template(path.read_text()).substitute(values)
    except (OSError, KeyError, ValueError) as e:
        raise LabError(f"{path}: cannot render the template ({e})") from e


def _dying_with_parent(argv: list[str]) -> list[str]:
    """`argv` run through util-linux `setpriv --pdeathsig TERM`, which sets PR_SET_PDEATHSIG and
    execs it: the kernel ends the program when its parent dies. (A Python preexec_fn could do
    the same, but runs between fork and exec while other threads exist, which can deadlock.)"""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--", *argv] if setpriv else argv


class Lab:
    """osmo-hlr + osmo-msc, started and stopped as one (async context manager)."""

    hlr_vty = HLR_VTY
    hlr_ctrl = HLR_CTRL
    hlr_gsup = HLR_GSUP
    msc_vty = MSC_VTY
    msc_ctrl = MSC_CTRL

    def __init__(self, cfg: LabConfig, *, detach: bool = False) -> None:
        self.cfg = cfg
        self.detach = detach  # processes outlive this Python process (`lab up --detach`)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.shim: Path | None = None
        self._lock: IO[str] | None = None

    @property
    def state_path(self) -> Path:
        return self.cfg.workdir / STATE_FILE

    def log_path(self, name: str) -> Path:
        return self.cfg.workdir / f"{name}.log"

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- start -------------------------------------------------------------------------------
    async def start(self) -> None:
        cfg = self.cfg
        hlr_bin = _binary("osmo-hlr")
        msc_bin = _binary("osmo-msc")
        cfg.workdir.mkdir(parents=True, exist_ok=True)
        await self._acquire_lock()
        try:
            self._check_ports()
            env: dict[str, str] = {}
            if not kernel_has_sctp():
                self.shim = await asyncio.to_thread(build_shim, cfg.workdir)
                env["LD_PRELOAD"] = str(self.shim)
            (cfg.workdir / "osmo-hlr.cfg").write_text(render("osmo-hlr.cfg", cfg))
            (cfg.workdir / "osmo-msc.cfg").write_text(render("osmo-msc.cfg", cfg))
            state = LabState(str(cfg.workdir), _config_json(cfg), shim=str(self.shim or ""))
            state.started_at = time.time()
            hlr_argv = [hlr_bin, "-c", "osmo-hlr.cfg", "-l", "hlr.db"]
            self._spawn("osmo-hlr", hlr_argv, {}, state)
            await self._await_ports("osmo-hlr", [HLR_VTY, HLR_CTRL, HLR_GSUP])
            self._spawn("osmo-msc", [msc_bin, "-c", "osmo-msc.cfg"], env, state)
            await self._await_ports("osmo-msc", [MSC_VTY, MSC_CTRL, cfg.smpp_port, cfg.sgs_port])
        except BaseException:
            await self.stop()
            raise
        finally:
            # The started processes hold the lock now (inherited descriptor); ours goes.
            self._release_lock()

    async def _acquire_lock(self, timeout: float = 120.0) -> None:
        """The machine-wide lab lock; waits (polling, so Ctrl-C and the timeout end the wait at
        once: a thread blocked in flock could not be cancelled) while another lab holds it."""
        lock = await asyncio.to_thread(LOCK_PATH.open, "a")
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise LabError(
                            f"another Osmocom lab holds {LOCK_PATH} for over {timeout:.0f} s "
                            "(`fraudgate lab status` / `lab down`)"
                        ) from None
                    await asyncio.sleep(0.2)
        except BaseException:
            lock.close()
            raise
        self._lock = lock

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closes our descriptor; the children's copies keep the lock
            self._lock = None

    def _check_ports(self) -> None:
        ports = {**FIXED_PORTS, self.cfg.smpp_port: "SMPP", self.cfg.sgs_port: "SGs"}
        busy = {p: what for p, what in ports.items() if not port_bindable(p, self.cfg.host)}
        if busy:
            listing = ", ".join(f"{p} ({what})" for p, what in sorted(busy.items()))
            raise LabError(
                f"ports in use on {self.cfg.host}: {listing}; something else holds them "
                "(`ss -ltnp`), or a lab runs (`fraudgate lab status`)"
            )

    def _spawn(self, name: str, argv: list[str], env: dict[str, str], state: LabState) -> None:
        log = self.log_path(name)
        assert self._lock is not None
        lock_fd = self._lock.fileno()
        with log.open("wb") as out:
            proc = subprocess.Popen(
                argv if self.detach else _dying_with_parent(argv),
                cwd=self.cfg.workdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **env},
                pass_fds=(lock_fd,),
                start_new_session=True,  # a terminal's Ctrl-C reaches us, not them
            )
        self.procs[name] = proc
        state.processes.append(ProcessState(name, proc.pid, argv, str(log)))
        state.save(self.state_path)

    async def _await_ports(self, name: str, ports: list[int]) -> None:
        deadline = time.monotonic() + self.cfg.start_timeout
        waiting = list(ports)
        while waiting:
            self.check_alive()
            waiting = await asyncio.to_thread(_closed_ports, waiting, self.cfg.host)
            if not waiting:
                return
            if time.monotonic() > deadline:
                raise LabError(
                    f"{name} did not open port(s) {waiting} in {self.cfg.start_timeout} s; "
                    f"its log:\n{self.output(name)}"
                )
            await asyncio.sleep(0.05)

    # -- running -----------------------------------------------------------------------------
    def output(self, name: str, limit: int = 6000) -> str:
        try:
            return self.log_path(name).read_text(errors="replace")[-limit:]
        except OSError:
            return ""

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            rc = proc.poll()
            if rc is not None:
                raise LabError(f"{name} exited with {rc}; its log:\n{self.output(name)}")

    @property
    def running(self) -> bool:
        return bool(self.procs) and all(p.poll() is None for p in self.procs.values())

    # -- stop --------------------------------------------------------------------------------
    async def stop(self, timeout: float = 5.0) -> None:
        procs = list(self.procs.items())
        self.procs.clear()
        for _, proc in reversed(procs):  # the MSC first, then the HLR it talks to
            await asyncio.to_thread(_terminate, proc.pid, timeout, proc)
        self._release_lock()
        if procs:
            await asyncio.to_thread(_await_ports_free, self.cfg.ports, self.cfg.host, timeout)
            with contextlib.suppress(FileNotFoundError):
                self.state_path.unlink()


def _terminate(pid: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """SIGTERM, then SIGKILL after `timeout`; reaps our own child."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None:
            if proc.poll() is not None:
                return
        elif not Path(f"/proc/{pid}").exists() or _zombie(pid):
            return
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if proc is not None:
        proc.wait(timeout)


def _closed_ports(ports: list[int], host: str) -> list[int]:
    return [p for p in ports if not port_open(p, host)]


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] == "Z"
    except OSError:
        return True


def _await_ports_free(ports: list[int], host: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        held = [p for p in ports if port_open(p, host, 0.1)]
        if not held:
            return
        if time.monotonic() > deadline:
            raise LabError(f"ports still answering after the lab stopped: {held}")
        time.sleep(0.05)


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise LabError(f"{name} not found: apt-get install {name} (./dev setup installs it)")
    return path


def _config_json(cfg: LabConfig) -> dict[str, Any]:
    out = {k: getattr(cfg, k) for k in cfg.__dataclass_fields__}
    out["workdir"] = str(cfg.workdir)
    out.pop("esme_password")
    return out


# -- another process's lab (lab down / status) ------------------------------------------------
@dataclass(frozen=True, slots=True)
class ProcessStatus:
    name: str
    pid: int
    alive: bool
    log: str


@dataclass(frozen=True, slots=True)
class LabStatus:
    workdir: str
    processes: tuple[ProcessStatus, ...]
    ports: dict[int, bool]  # port -> answering
    started_at: float

    @property
    def running(self) -> bool:
        return bool(self.processes) and all(p.alive for p in self.processes)


def lab_status(workdir: Path) -> LabStatus | None:
    """The lab recorded in `workdir` (None when no state file: nothing was started there)."""
    path = workdir / STATE_FILE
    if not path.exists():
        return None
    state = LabState.load(path)
    procs = tuple(
        ProcessStatus(p.name, p.pid, pid_alive(p.pid, p.name), p.log) for p in state.processes
    )
    cfg = state.lab_config()
    return LabStatus(
        state.workdir, procs, {p: port_open(p, cfg.host, 0.2) for p in cfg.ports}, state.started_at
    )


def lab_down(workdir: Path, timeout: float = 5.0) -> list[str]:
    """Stop the processes recorded in `workdir` by pid; returns what was stopped."""
    path = workdir / STATE_FILE
    if not path.exists():
        return []
    state = LabState.load(path)
    stopped = []
    for p in reversed(state.processes):
        if pid_alive(p.pid, p.name):
            _terminate(p.pid, timeout)
            stopped.append(f"{p.name} (pid {p.pid})")
    cfg = state.lab_config()
    _await_ports_free(cfg.ports, cfg.host, timeout)
    path.unlink()
    return stopped
