"""CommandSwitch against real little provisioning tools (shell scripts written to tmp_path)."""

from __future__ import annotations

import asyncio
import gc
import os
import time
from pathlib import Path

import pytest

from gateway.switch.command import CommandSettings, CommandSwitch, CommandTemplateError
from gateway.switch.port import SwitchRejected, SwitchUnavailable

A, B = "77011234567", "+77011234568"

# A fake HLR provisioning tool: `hlrctl barring --msisdn N --on|--off`, `hlrctl show --msisdn N`.
# Numbers not starting 7701/+7701 are unknown (exit 3); a file `down` makes it busy (exit 75).
HLRCTL = r"""#!/bin/sh
state="$HLRCTL_STATE"
cmd="$1"; shift
msisdn=""; mode=""
while [ $# -gt 0 ]; do
  case "$1" in
    --msisdn) msisdn="$2"; shift 2;;
    --on) mode=on; shift;;
    --off) mode=off; shift;;
    *) shift;;
  esac
done
echo "$cmd $msisdn $mode" >> "$state/calls"
case "$msisdn" in 7701*|+7701*) ;; *) echo "no subscriber $msisdn" >&2; exit 3;; esac
if [ -f "$state/down" ]; then echo "HLR busy, try later" >&2; exit 75; fi
case "$cmd" in
  show) if [ -f "$state/barred-$msisdn" ]; then echo "barring: on"; else echo "barring: off"; fi;;
  barring)
    if [ "$mode" = on ]; then
      if [ -f "$state/barred-$msisdn" ]; then echo "OK already barred"
      else touch "$state/barred-$msisdn"; echo "OK barred"; fi
    else rm -f "$state/barred-$msisdn"; echo "OK unbarred"; fi;;
  *) echo "usage: hlrctl barring|show" >&2; exit 64;;
esac
"""


def script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(body)
    path.chmod(0o755)
    return str(path)


@pytest.fixture
def hlrctl(tmp_path: Path) -> str:
    (tmp_path / "state").mkdir()
    return script(tmp_path, "hlrctl", HLRCTL)


def settings(tool: str, tmp_path: Path, *, status: bool = True, **kw: object) -> CommandSettings:
    base: dict[str, object] = {
        "block": (tool, "barring", "--msisdn", "{msisdn}", "--on"),
        "unblock": (tool, "barring", "--msisdn", "{msisdn}", "--off"),
        "env": (f"HLRCTL_STATE={tmp_path / 'state'}",),
        "retry_codes": (75,),
        "unknown_codes": (3,),
        "expect": "^OK",
        "timeout": 5.0,
    }
    if status:
        base |= {
            "status": (tool, "show", "--msisdn", "{msisdn}"),
            "blocked_pattern": "^barring: on",
            "active_pattern": "^barring: off",
        }
    return CommandSettings(**(base | kw))  # type: ignore[arg-type]


def calls(tmp_path: Path) -> list[str]:
    return (tmp_path / "state" / "calls").read_text().splitlines()


async def test_block_status_unblock_reads_before_writing(hlrctl: str, tmp_path: Path) -> None:
    async with CommandSwitch(settings(hlrctl, tmp_path)) as sw:
        assert await sw.status(A) == "active"
        first = await sw.block(A, reason="case confirmed", case_id="c1")
        assert (first.msisdn, first.status, first.changed) == (A, "blocked", True)
        assert first.request_id.startswith("cmd-")
        assert await sw.status(A) == "blocked" and await sw.status(B) == "active"
        again = await sw.block(A, reason="case confirmed", case_id="c1")
        assert (again.status, again.changed) == ("blocked", False)
        back = await sw.unblock(A, reason="appeal", case_id="c1")
        assert (back.status, back.changed) == ("active", True)
        assert await sw.status(A) == "active"
    barrings = [c for c in calls(tmp_path) if c.startswith("barring")]
    assert barrings == [f"barring {A} on", f"barring {A} off"]  # the second block ran no change


async def test_without_status_the_unchanged_pattern_decides(hlrctl: str, tmp_path: Path) -> None:
    cfg = settings(hlrctl, tmp_path, status=False, unchanged_pattern="already")
    async with CommandSwitch(cfg) as sw:
        assert (await sw.block(B, reason="r", case_id="c1")).changed
        assert not (await sw.block(B, reason="r", case_id="c1")).changed
        assert await sw.status(B) == "unknown"  # no status command configured


async def test_values_are_single_arguments_never_shell_code(tmp_path: Path) -> None:
    out = tmp_path / "argv"
    tool = script(tmp_path, "record", f'#!/bin/sh\nprintf "%s\\0" "$@" > {out}\necho OK\n')
    reason = "Мошенничество; rm -rf / $(touch pwned) `id` \"q\" 's'\nline2"
    cfg = CommandSettings(
        block=(tool, "--msisdn={msisdn}", "--reason", "{reason}", "{case_id}", "{idempotency_key}",
               "{{literal}}"),
        unblock=(tool, "{msisdn}"),
    )  # fmt: skip
    async with CommandSwitch(cfg) as sw:
        await sw.block(A, reason=reason, case_id="case-7", idempotency_key="case-7:block:x")
    argv = out.read_bytes().split(b"\0")[:-1]
    assert [a.decode() for a in argv] == [
        f"--msisdn={A}",
        "--reason",
        reason.replace("\n", " "),  # one printable line
        "case-7",
        "case-7:block:x",
        "{literal}",
    ]
    assert not (tmp_path / "pwned").exists()  # nothing ran the text


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (("sh", "-c", "hlrctl {msisdn}"), "runs a shell"),
        (("/bin/bash", "/opt/x.sh", "{msisdn}"), "runs a shell"),
        (("/usr/bin/env", "sh", "-c", "x {msisdn}"), "runs a shell"),
        (("/opt/prov/hlrctl barring --on",), "one path"),
        (("/opt/prov/{msisdn}",), "no placeholders in the program"),
        (("/opt/prov/hlrctl", "{name}"), r"'\{name\}' is not one of"),
        (("/opt/prov/hlrctl", "{msisdn"), "is not one of"),
        ((), "non-empty array"),
    ],
)
def test_unsafe_or_broken_templates_are_refused(block: tuple[str, ...], message: str) -> None:
    with pytest.raises(CommandTemplateError, match=message):
        CommandSwitch(CommandSettings(block=block, unblock=("/opt/prov/hlrctl",)))


def test_status_needs_both_patterns_and_codes_must_not_overlap() -> None:
    with pytest.raises(CommandTemplateError, match="blocked_pattern and active_pattern"):
        CommandSettings(block=("/x",), unblock=("/x",), status=("/x",)).check()
    with pytest.raises(CommandTemplateError, match="overlap"):
        CommandSettings(block=("/x",), unblock=("/x",), retry_codes=(0,)).check()
    with pytest.raises(CommandTemplateError, match="expect"):
        CommandSettings(block=("/x",), unblock=("/x",), expect="(").check()


async def test_exit_codes_map_to_retry_reject_and_unknown(hlrctl: str, tmp_path: Path) -> None:
    async with CommandSwitch(settings(hlrctl, tmp_path, status=False)) as sw:
        with pytest.raises(SwitchRejected) as unknown:
            await sw.block("87019999999", reason="r", case_id="c1")
        assert unknown.value.code == "unknown_subscriber"
        (tmp_path / "state" / "down").touch()
        with pytest.raises(SwitchUnavailable, match=r"exit 75.*HLR busy"):
            await sw.block(A, reason="r", case_id="c1")
        (tmp_path / "state" / "down").unlink()
        assert (await sw.block(A, reason="r", case_id="c1")).changed  # the retry goes through
    async with CommandSwitch(settings(hlrctl, tmp_path)) as sw:
        assert await sw.status("87019999999") == "unknown"
    bad = settings(hlrctl, tmp_path, status=False, block=(hlrctl, "bogus", "--msisdn", "{msisdn}"))
    async with CommandSwitch(bad) as sw:
        with pytest.raises(SwitchRejected, match=r"exit 64.*usage") as other:
            await sw.block(A, reason="r", case_id="c1")
        assert other.value.code == "exit_64"


async def test_expect_must_match_an_ok_exit(tmp_path: Path) -> None:
    tool = script(tmp_path, "quiet", "#!/bin/sh\necho 'ERR: provisioning queue full'\nexit 0\n")
    async with CommandSwitch(CommandSettings(block=(tool,), unblock=(tool,), expect="^OK")) as sw:
        with pytest.raises(SwitchRejected, match=r"does not match `expect`.*queue full") as info:
            await sw.block(A, reason="r", case_id="c1")
        assert info.value.code == "unexpected_output"


async def test_timeout_kills_the_process_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    tool = script(
        tmp_path, "hang", f"#!/bin/sh\nsleep 60 &\necho $! > {pids}\necho $$ >> {pids}\nsleep 60\n"
    )
    async with CommandSwitch(CommandSettings(block=(tool,), unblock=(tool,), timeout=0.5)) as sw:
        started = time.monotonic()
        with pytest.raises(SwitchUnavailable, match=r"no answer in 0.5 s, process group killed"):
            await sw.block(A, reason="r", case_id="c1")
        assert time.monotonic() - started < 3.0
    for pid in map(int, pids.read_text().split()):
        for _ in range(50):  # the orphaned child is reaped by init a moment later
            if not alive(pid):
                break
            await asyncio.sleep(0.02)
        assert not alive(pid), f"process {pid} survived"


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def group_alive(pgid: int) -> list[int]:
    """The live (not zombie) processes of process group `pgid`, from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(entry.name))
    return members


def started_tool(tmp_path: Path, body: str) -> tuple[CommandSwitch, Path]:
    """A tool that starts a background child and writes `pgid child` before it hangs."""
    pids = tmp_path / "pids"
    tool = script(tmp_path, "hang", f"#!/bin/sh\n{body}sleep 60 &\necho $$ $! > {pids}.tmp\n"
                  f"mv {pids}.tmp {pids}\nsleep 60\n")  # fmt: skip
    return CommandSwitch(CommandSettings(block=(tool,), unblock=(tool,), timeout=30)), pids


def read_pids(path: Path) -> list[int]:
    return [int(p) for p in path.read_text().split()] if path.exists() else []


async def wait_for_pids(path: Path) -> list[int]:
    for _ in range(200):
        if pids := read_pids(path):
            return pids
        await asyncio.sleep(0.01)
    raise AssertionError(f"{path} never written")


async def test_a_cancelled_caller_takes_the_tool_down_with_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The workflow's task cancelled (TaskGroup failure, shutdown) while the tool runs: the
    whole process group is gone when the cancellation has gone through, the readers too."""
    sw, pids = started_tool(tmp_path, "")
    async with sw:
        task = asyncio.create_task(sw.block(A, reason="r", case_id="c1"))
        pgid, child = await wait_for_pids(pids)
        assert group_alive(pgid) and os.getpgid(pgid) == pgid
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - started < 2.0  # SIGTERM was enough, no grace used up
        assert group_alive(pgid) == [] and not alive(child)
        assert sw._running == set()
    gc.collect()
    await asyncio.sleep(0.05)
    gc.collect()
    assert "never retrieved" not in caplog.text


async def test_a_second_cancellation_skips_the_grace(tmp_path: Path) -> None:
    """A tool that ignores SIGTERM would get KILL_GRACE; cancelled again meanwhile (a second
    signal), it gets SIGKILL at once."""
    sw, pids = started_tool(tmp_path, "trap '' TERM\n")
    async with sw:
        task = asyncio.create_task(sw.block(A, reason="r", case_id="c1"))
        pgid, _ = await wait_for_pids(pids)
        task.cancel()
        await asyncio.sleep(0.2)
        assert group_alive(pgid)  # the shell ignores SIGTERM: within its grace
        assert not task.done()  # the first cancellation waits for the cleanup
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(50):
            if not group_alive(pgid):
                break
            await asyncio.sleep(0.01)
        assert group_alive(pgid) == []
        assert time.monotonic() - started < 1.0


async def test_environment_is_an_allow_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRAUDGATE_SWITCH__TOKEN", "s3cret")
    monkeypatch.setenv("PROV_USER", "fraudgate")
    out = tmp_path / "env"
    tool = script(tmp_path, "env", f"#!/bin/sh\nenv > {out}\necho OK\n")
    cfg = CommandSettings(block=(tool,), unblock=(tool,), env=("PROV_USER", "PROV_MODE=test"))
    async with CommandSwitch(cfg) as sw:
        await sw.block(A, reason="r", case_id="c1")
    env = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
    assert env["PROV_USER"] == "fraudgate" and env["PROV_MODE"] == "test"
    assert "FRAUDGATE_SWITCH__TOKEN" not in env and "HOME" not in env
    assert env["PATH"] == os.defpath


async def test_output_is_bounded_and_shortened_in_errors(tmp_path: Path) -> None:
    tool = script(
        tmp_path, "loud", "#!/bin/sh\nhead -c 300000 /dev/zero | tr '\\0' x\necho\necho tail-end\n"
        "exit 9\n",
    )  # fmt: skip
    async with CommandSwitch(CommandSettings(block=(tool,), unblock=(tool,))) as sw:
        with pytest.raises(SwitchRejected) as info:
            await sw.block(A, reason="r", case_id="c1")
    assert info.value.code == "exit_9" and len(str(info.value)) < 600
    assert "..." in str(info.value)


async def test_concurrency_is_limited(tmp_path: Path) -> None:
    log = tmp_path / "log"
    tool = script(
        tmp_path, "slow", f"#!/bin/sh\necho start >> {log}\nsleep 0.3\necho end >> {log}\n"
    )
    cfg = CommandSettings(block=(tool, "{msisdn}"), unblock=(tool,), max_concurrent=2)
    async with CommandSwitch(cfg) as sw:
        numbers = [f"770100000{i:02d}" for i in range(5)]
        await asyncio.gather(*(sw.block(n, reason="r", case_id="c") for n in numbers))
    running = peak = 0
    for line in log.read_text().split():
        running += 1 if line == "start" else -1
        peak = max(peak, running)
    assert peak == 2


async def test_missing_tool_and_bad_number(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope")
    async with CommandSwitch(CommandSettings(block=(missing,), unblock=(missing,))) as sw:
        with pytest.raises(SwitchUnavailable, match="cannot run"):
            await sw.block(A, reason="r", case_id="c1")
        with pytest.raises(SwitchRejected) as info:
            await sw.block("7701 123; id", reason="r", case_id="c1")
        assert info.value.code == "invalid_msisdn"
