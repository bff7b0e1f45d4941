"""The README's first command: `fraudgate demo` runs unattended, catches the scenario's fraud,
lets normal traffic through, and alerts on MQTT; it finds the SIM box, the Wangiri and the
spoofed caller ids in a day of call records dropped in its CDR inbox, without a finding on the
legitimate look-alikes, and leaves their cases to an analyst; it serves the console while it
runs and leaves its state (database, tokens, a configuration) for `fraudgate cases list` and
`fraudgate console` afterwards."""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fixtures_services import free_port
from helpers.console import Process, cases_page, console_process, sign_in

from gateway.api import hash_token
from gateway.calls.analyzer import CallFinding, FindingKind, Reason
from gateway.config import load
from simulators.demo import CDR_INBOX, Board, stage_call_day
from simulators.demo_state import CONFIG_FILE, ROLES, TOKENS_FILE, console_address, demo_tokens

ROOT = Path(__file__).resolve().parent.parent
CONSOLE_LINE = r"^# console: (http://127\.0\.0\.1:(\d+))/console/.* analyst token (\S+) "


def _demo(data_dir: Path, *args: str) -> Process:
    port = str(free_port())
    return Process("demo", "--quiet", "--data-dir", str(data_dir), "--console-port", port, *args)


def _table(out: str) -> dict[str, tuple[int, int, int, int]]:
    rows = re.findall(r"^\s+(\w+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$", out, re.M)
    return {label: (int(a), int(b), int(c), int(d)) for label, a, b, c, d in rows}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """One unattended demo (its stdout, its data directory) for the tests of this module."""
    data_dir = tmp_path_factory.mktemp("demo")
    rc, out, err = _demo(data_dir, "--duration", "5", "--rate", "150").finish(120)
    assert rc == 0, err
    return out, data_dir


def test_demo_with_duration_catches_fraud_passes_normal_traffic_and_alerts(
    demo_run: tuple[str, Path],
) -> None:
    out, _ = demo_run
    m = re.search(r"(\d+) messages sent, (\d+) recorded, (\d+) stopped inline", out)
    assert m, out
    sent, recorded, stopped = map(int, m.groups())
    assert sent > 200 and recorded == sent
    table = _table(out)
    inspected, allowed, _, _ = table["normal"]
    assert inspected > 50 and allowed == inspected  # no false positive on normal traffic
    for label in ("smishing", "spoof", "fanout"):
        inspected, allowed, _flagged, blocked = table[label]
        assert inspected > 0 and blocked >= 0.9 * inspected, (label, table[label])
    assert stopped == sum(t[3] for t in table.values())  # enforcing: every block stopped
    alerts = re.search(r"MQTT alerts received: .*sms (\d+)", out)
    assert alerts and int(alerts.group(1)) == sum(t[2] + t[3] for t in table.values())


def test_demo_finds_the_call_records_fraud_and_leaves_the_cases_to_an_analyst(
    demo_run: tuple[str, Path],
) -> None:
    out, data_dir = demo_run
    day = re.search(
        r"^# call records: .* of (\d+) records generated .*; the gateway read 1 file, "
        r"(\d+) records \(0 bad rows\), analysed in ([\d.]+) s$", out, re.M,
    )  # fmt: skip
    assert day, out
    generated, read, seconds = int(day.group(1)), int(day.group(2)), float(day.group(3))
    assert generated > 5000 and read == generated and seconds < 5.0
    rows = {
        name: (int(a), int(b), int(c))
        for name, a, b, c in re.findall(r"^  (SIM-box SIMs|Wangiri campaigns|spoofed numbers)"
                                        r" +(\d+) +(\d+) +(\d+)", out, re.M)
    }  # fmt: skip
    labelled, sims, false_positives = rows["SIM-box SIMs"]
    assert labelled >= 8 and sims >= 0.9 * labelled and false_positives == 0
    assert rows["Wangiri campaigns"][1:] == (1, 0)
    assert rows["spoofed numbers"][1] >= 1 and rows["spoofed numbers"][2] == 0
    assert re.search(r"^  hard cases \(.*\): 5 SIMs, 0 findings$", out, re.M), out
    ranges = re.search(r"^  Wangiri campaigns .* ranges: (.*)$", out, re.M)
    assert ranges
    found = sims + len(ranges.group(1).split(", ")) + rows["spoofed numbers"][1]
    alerts = re.search(r"MQTT alerts received: .*call (\d+)", out)
    assert alerts and int(alerts.group(1)) == found  # one `call` alert per finding
    # every SIM-box SIM found opened a case, and none was confirmed by the demo's probe policy
    assert (
        f"cases opened from them: {sims} detection_simbox (new {sims}), waiting for an analyst"
        in out
    )
    inbox = data_dir / CDR_INBOX  # the file was renamed in, read, then moved to done/
    assert [p.name for p in inbox.iterdir()] == ["done"]
    assert [p.name.endswith("-s7.csv.gz") for p in (inbox / "done").iterdir()] == [True]


def test_demo_leaves_its_state_for_the_cases_command_and_the_console(
    demo_run: tuple[str, Path],
) -> None:
    out, data_dir = demo_run
    data_dir = data_dir.resolve()
    tokens_file, config = data_dir / TOKENS_FILE, data_dir / CONFIG_FILE
    assert stat.S_IMODE(tokens_file.stat().st_mode) == 0o600
    tokens = {role: token for role, _user, token in (ln.split() for ln in tokens_file.open())}
    assert set(tokens) == set(ROLES)
    announced = re.search(CONSOLE_LINE, out, re.M)
    assert announced, out
    assert announced.group(3) == tokens["analyst"]
    assert f"fraudgate cases list -c {config}" in out and f"fraudgate console -c {config}" in out
    cfg = load(config)
    assert cfg.data_dir == data_dir and cfg.api.listen == f"127.0.0.1:{announced.group(2)}"
    hashes = {(hash_token(tokens[r]), u, r) for r, u in ROLES.items()}
    assert set(cfg.api.tokens) == hashes and tokens["analyst"] not in config.read_text()
    assert cfg.cases.auto_confirm_probe_outcomes == ("simbox", "simfarm")
    listed = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "cases", "list", "-c", str(config)],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    ids = re.findall(r"^([0-9a-f]{32}) ", listed.stdout, re.M)
    assert ids, listed.stdout
    with console_process(config) as url:  # the address the demo served on, free again
        assert url == announced.group(1)
        assert f"/console/cases/{ids[0]}" in cases_page(url, tokens["analyst"])


def test_demo_serves_the_console_while_it_runs_and_stops_cleanly_on_ctrl_c(
    tmp_path: Path,
) -> None:
    demo = _demo(tmp_path, "--rate", "100", "--no-calls")
    try:
        announced = demo.wait_line(CONSOLE_LINE, timeout=60)
        url, token = announced.group(1), announced.group(3)
        cases_page(url, token)  # signed in, the cases page answers (200)
        with httpx.Client(base_url=url, timeout=10.0) as client:
            assert sign_in(client, token).status_code == 303
            assert client.get("/console/").status_code == 200  # the live page
        time.sleep(2)
    finally:
        rc, out, err = demo.finish(60, signal.SIGINT)
    assert rc == 0, err
    assert "Traceback" not in err and "# demo summary" in out
    m = re.search(r"(\d+) messages sent, (\d+) recorded", out)
    assert m and int(m.group(1)) > 0 and int(m.group(1)) == int(m.group(2))
    # --no-calls: no CDR inbox, no call-record section, no call alert
    alerts = re.search(r"MQTT alerts received: (.*)$", out, re.M)
    assert alerts and "# call records" not in out and not re.search(r"\bcall \d", alerts.group(1))
    assert not (tmp_path / CDR_INBOX).exists()


def test_each_demo_run_stages_a_new_day_of_call_records_outside_the_inbox(
    tmp_path: Path,
) -> None:
    """A finding is recorded once per subject: a second run on the same data directory takes
    the next seed, so its SIM-box SIMs are new and shown again."""
    now = time.time()
    first = stage_call_day(tmp_path, 7, now)
    second = stage_call_day(tmp_path, 7, now)
    assert (first.seed, second.seed) == (7, 8)
    assert first.staged.exists() and not first.staged.name.endswith(".part")
    assert first.staged.parent != first.inbox  # written elsewhere, renamed in by drop()
    assert first.labels.simbox and not set(first.labels.simbox) & set(second.labels.simbox)
    first.inbox.mkdir()
    assert first.drop() == first.inbox / first.staged.name and not first.staged.exists()


def test_a_call_finding_is_printed_with_a_spoofed_number_masked_as_the_alert_does() -> None:
    out = io.StringIO()
    board = Board(out)
    reason = Reason("calls.spoof.presence", 0.9, "the number's subscriber was in cell 1-2")
    board.on_call_finding(
        CallFinding(FindingKind.SPOOFED_CLI, "77011234567", 0.9, (reason,), 0.0, 1.0)
    )
    line = out.getvalue()
    assert line.startswith("CALL  0.90 spoofed_cli    7701***4567 [the number's subscriber")
    assert "77011234567" not in line and "(records: ?)" in line
    assert board.call_findings and board.call_findings[0].subject == "77011234567"


def test_demo_tokens_are_made_once_and_kept_private(tmp_path: Path) -> None:
    first = demo_tokens(tmp_path)
    assert {t.role: t.user for t in first.values()} == ROLES
    assert len({t.token for t in first.values()}) == 4
    path = tmp_path / TOKENS_FILE
    os.chmod(path, 0o644)
    assert demo_tokens(tmp_path) == first  # a bookmarked login keeps working
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_text(path.read_text().replace("auditor demo-auditor", "auditor someone"))
    again = demo_tokens(tmp_path)
    assert again["auditor"] != first["auditor"] and again["analyst"] == first["analyst"]
    assert again["auditor"].sha256 == hash_token(again["auditor"].token)


def test_console_address_falls_back_to_a_free_port_when_taken() -> None:
    port = free_port()
    assert console_address(port) == (f"127.0.0.1:{port}", True)
    with socket.create_server(("127.0.0.1", port)):
        address, as_asked = console_address(port)
    assert not as_asked and address.startswith("127.0.0.1:") and address != f"127.0.0.1:{port}"
