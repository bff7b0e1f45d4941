"""The lab launcher against the real osmo-hlr / osmo-msc: starts, answers, stops clean."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _procs import free_ports
from conftest import OsmoLab

from simulators.osmo.lab import (
    FIXED_PORTS,
    LOCK_PATH,
    PROJECT_DIR,
    Lab,
    LabConfig,
    LabError,
    lab_down,
    lab_status,
    port_open,
)


async def test_lab_starts_and_stops_clean(osmo_lab: OsmoLab) -> None:
    lab = await osmo_lab(smpp_first=True)
    assert lab.running
    ports = [*FIXED_PORTS, lab.cfg.smpp_port, lab.cfg.sgs_port]
    assert all(port_open(p) for p in ports)
    assert " smpp-first" in (lab.cfg.workdir / "osmo-msc.cfg").read_text()
    await lab.stop()
    assert not lab.running
    assert not any(port_open(p) for p in ports)
    assert not lab.state_path.exists()


def _fraudgate(*args: str) -> list[str]:
    return [sys.executable, "-m", "gateway.cli", "lab", *args]


def _wait_line(proc: subprocess.Popen[str], needle: str, timeout: float = 30) -> str:
    assert proc.stdout is not None
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if needle in line:
            return "".join(seen)
    raise AssertionError(f"{needle!r} not printed; got {''.join(seen)!r}")


def _no_osmo_left(workdir: Path) -> None:
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True)
    left = [line for line in ps.stdout.splitlines() if str(workdir) in line]
    assert not left, left
    assert not any(port_open(p) for p in FIXED_PORTS)


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm", "parent-killed"])
def test_lab_up_foreground_leaves_nothing(tmp_path: Path, how: str) -> None:
    """`lab up` in the foreground: Ctrl-C / SIGTERM stop everything it started; a parent killed
    with SIGKILL takes its osmo-* children with it (PR_SET_PDEATHSIG)."""
    smpp, sgs = free_ports(2)
    workdir = tmp_path / "lab"
    args = ["--workdir", str(workdir), "up", "--no-provision"]
    cfg = tmp_path / "lab.toml"
    cfg.write_text(f"[lab]\nsmpp_port = {smpp}\nsgs_port = {sgs}\n")
    with _lab_slot():
        proc = subprocess.Popen(
            _fraudgate("-c", str(cfg), *args), stdout=subprocess.PIPE, text=True
        )
        try:
            out = _wait_line(proc, "Ctrl-C stops the lab")
            assert f"SMPP      127.0.0.1:{smpp}" in out
            st = lab_status(workdir)
            assert st is not None and st.running and all(st.ports.values())
            pids = [p.pid for p in st.processes]
            sig = {"ctrl-c": signal.SIGINT, "sigterm": signal.SIGTERM}.get(how, signal.SIGKILL)
            proc.send_signal(sig)
            rest, _ = proc.communicate(timeout=20)
            if how != "parent-killed":
                assert proc.returncode == 0
                assert "lab stopped" in rest
            _until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in pids))
            _until(lambda: not any(port_open(p) for p in FIXED_PORTS))
            _no_osmo_left(workdir)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            lab_down(workdir)


def test_lab_detach_status_down(tmp_path: Path) -> None:
    smpp, sgs = free_ports(2)
    cfg = tmp_path / "lab.toml"
    cfg.write_text(f"[lab]\nsmpp_port = {smpp}\nsgs_port = {sgs}\nsmpp_first = false\n")
    workdir = tmp_path / "lab"
    base = ["-c", str(cfg), "--workdir", str(workdir)]
    with _lab_slot():
        try:
            up = subprocess.run(
                _fraudgate(*base, "up", "--detach", "--no-provision"),
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert up.returncode == 0, up.stderr
            assert "smpp-first off" in up.stdout
            status = subprocess.run(_fraudgate(*base, "status"), capture_output=True, text=True)
            assert status.returncode == 0, status.stdout
            assert status.stdout.count(" running ") == 2 and ":down" not in status.stdout
            again = subprocess.run(
                _fraudgate(*base, "up", "--no-provision"), capture_output=True, text=True
            )
            assert again.returncode == 2 and "already runs" in again.stderr
            down = subprocess.run(_fraudgate(*base, "down"), capture_output=True, text=True)
            assert down.returncode == 0 and "osmo-msc" in down.stdout and "osmo-hlr" in down.stdout
            _no_osmo_left(workdir)
            status = subprocess.run(_fraudgate(*base, "status"), capture_output=True, text=True)
            assert status.returncode == 3 and "no lab" in status.stdout
        finally:
            lab_down(workdir)


async def test_ports_taken_are_named(osmo_lab: OsmoLab, tmp_path: Path) -> None:
    """A second lab while one runs (or anything on the fixed ports) gets a clear error."""
    lab = await osmo_lab()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        second = Lab(LabConfig(tmp_path / "second", smpp_port=taken, start_timeout=2))
        # The lock is held by the running lab's processes: stop it first, then the port clash.
        await lab.stop()
        with pytest.raises(LabError, match=rf"ports in use on 127.0.0.1: {taken} \(SMPP\)"):
            await second.start()
        assert not second.procs


def test_bad_settings_are_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "lab.toml"
    cfg.write_text("[lab]\nsmpp_port = 4254\n")
    bad = subprocess.run(_fraudgate("-c", str(cfg), "status"), capture_output=True, text=True)
    assert bad.returncode == 2 and "smpp_port: 4254 is not a usable port" in bad.stderr
    cfg.write_text("[lab]\nsmpp_prot = 2775\n")
    bad = subprocess.run(_fraudgate("-c", str(cfg), "status"), capture_output=True, text=True)
    assert bad.returncode == 2 and "lab.smpp_prot: unknown key" in bad.stderr


@contextlib.contextmanager
def _lab_slot() -> Iterator[None]:
    """Wait (like Lab.start does) while another lab holds the machine-wide lock."""
    with LOCK_PATH.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fcntl.flock(fh, fcntl.LOCK_UN)
    yield


def _until(predicate: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


async def test_a_failure_inside_the_lab_leaves_nothing(tmp_path: Path) -> None:
    """An exception in the body of `async with Lab(...)` (a failing test) still stops both
    programs and frees every port before it propagates."""
    smpp, sgs = free_ports(2)
    lab = Lab(LabConfig(tmp_path / "lab", smpp_port=smpp, sgs_port=sgs))
    with pytest.raises(RuntimeError, match="the test failed"):
        async with lab:
            pids = [p.pid for p in lab.procs.values()]
            assert len(pids) == 2
            raise RuntimeError("the test failed")
    assert not any(os.path.exists(f"/proc/{pid}") for pid in pids)  # noqa: ASYNC240
    assert not any(port_open(p) for p in [*FIXED_PORTS, smpp, sgs])
    assert not lab.state_path.exists()


async def test_a_program_dying_is_reported_with_its_log(osmo_lab: OsmoLab) -> None:
    lab = await osmo_lab()
    msc = lab.procs["osmo-msc"]
    msc.kill()
    msc.wait()
    dead = r"(?s)osmo-msc exited with -9; its log:\n.*SMPP at 127.0.0.1"
    with pytest.raises(LabError, match=dead):
        lab.check_alive()


def test_lab_scenario_stopped_by_sigterm_leaves_nothing(tmp_path: Path) -> None:
    """SIGTERM while `lab scenario` runs (gateway bound, phones about to send) stops the
    gateway, the broker and the lab it started."""
    smpp, sgs = free_ports(2)
    workdir = tmp_path / "lab"
    cfg = tmp_path / "lab.toml"
    cfg.write_text(f'[lab]\nworkdir = "{workdir}"\nsmpp_port = {smpp}\nsgs_port = {sgs}\n')
    scenario = Path(__file__).resolve().parents[2] / "config" / "scenarios" / "osmocom-lab.toml"
    with _lab_slot():
        proc = subprocess.Popen(
            _fraudgate("-c", str(cfg), "scenario", str(scenario)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            _wait_line(proc, "# gateway:")
            st = lab_status(workdir)
            assert st is not None and st.running
            pids = [p.pid for p in st.processes]
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
            assert proc.returncode == 130, err[-2000:]
            assert "interrupted: the lab is stopped" in err
            _until(lambda: not any(os.path.exists(f"/proc/{pid}") for pid in pids))
            _no_osmo_left(workdir)
            assert not lab_status(workdir)  # the state file went with the lab
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            lab_down(workdir)


async def test_waiting_for_another_lab_ends_at_once_on_cancel_or_timeout(
    osmo_lab: OsmoLab, tmp_path: Path
) -> None:
    """A second lab waits for the first one's lock; Ctrl-C (cancellation) or its timeout ends
    the wait at once (a thread blocked in flock could not be cancelled and kept the process)."""
    await osmo_lab()
    smpp, sgs = free_ports(2)
    script = f"""
import asyncio, pathlib
from simulators.osmo.lab import Lab, LabConfig
async def main():
    task = asyncio.create_task(Lab(LabConfig(pathlib.Path({str(tmp_path / 'second')!r}),
                                             smpp_port={smpp}, sgs_port={sgs})).start())
    await asyncio.sleep(0.5)
    assert not task.done()
    task.cancel()
try:
    asyncio.run(main())
except asyncio.CancelledError:
    pass
"""
    started = time.monotonic()
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", script], capture_output=True, text=True,
        timeout=30, cwd=str(PROJECT_DIR),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 5  # not until the first lab ends (teardown)
    second = Lab(LabConfig(tmp_path / "third", smpp_port=smpp, sgs_port=sgs))
    with pytest.raises(LabError, match="another Osmocom lab holds"):
        await second._acquire_lock(timeout=0.3)
