"""SIGHUP re-reads the classifier's model file ([detectors] model) when it changed and swaps it
while the daemon serves: the SMPP bind stays the same link, the next message carries the new
model's rule id; a broken file keeps the model in use and says so in one line naming the file."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from harness import eventually, send, smsc_config, submit

from gateway.detect.classifier import ClassifierDetector, ModelError, TextClassifier, train
from gateway.domain import SmsEvent
from gateway.store import Store
from gateway.store.models import messages, verdicts
from smsc.simulator import SimulatedSmsc

ROOT = Path(__file__).resolve().parents[1]
HAM = [
    "Привет, как дела? Увидимся вечером",
    "Купи хлеба по дороге домой",
    "Сәлем, кешке хабарлас",
    "Running late, see you at 7",
    "Your code is 4821. Do not share it",
]
FRAUD = [
    "Ваша карта заблокирована, перейдите https://bank-unblock.top/card",
    "Назовите код из SMS сотруднику банка +7 701 123 45 67",
    "Сіздің картаңыз бұғатталды, кодты айтыңыз",
    "WINNER! Claim your prize at http://prize-now.win",
    "Переведите деньги на безопасный счёт",
]
SCAM = "Переведите деньги на безопасный счёт"  # p(fraud) over the threshold in both models


@pytest.fixture(scope="module")
def models() -> tuple[TextClassifier, TextClassifier]:
    labels = [False] * len(HAM) + [True] * len(FRAUD)
    return train(HAM + FRAUD, labels, name="first"), train(HAM + FRAUD, labels, name="second")


def put(path: Path, model: TextClassifier | bytes) -> None:
    """Replace the file the way an operator's deployment should: write beside, then rename."""
    tmp = path.with_suffix(".tmp")
    if isinstance(model, bytes):
        tmp.write_bytes(model)
    else:
        model.save(tmp)
    os.replace(tmp, path)


def test_component_swaps_on_change_only_and_keeps_the_model_on_a_broken_file(
    tmp_path: Path, models: tuple[TextClassifier, TextClassifier]
) -> None:
    path = tmp_path / "m.npz"
    put(path, models[0])
    det = ClassifierDetector.from_file(path, weight=0.5)
    scam = SmsEvent("77011112233", "77019998877", SCAM)
    assert [r.rule_id for r in det.inspect(scam, 0.0)] == ["classifier.first"]
    assert det.maybe_reload_model() is False  # unchanged: not read again
    put(path, models[1])
    assert det.maybe_reload_model() is True
    assert [r.rule_id for r in det.inspect(scam, 0.0)] == ["classifier.second"]
    put(path, b"not a zip at all")
    with pytest.raises(ModelError, match=rf"^{path}: not a fraudgate model file"):
        det.maybe_reload_model()
    assert det.maybe_reload_model() is False  # the same broken file is not read again
    assert det.rule_id == "classifier.second" and det.weight == 0.5
    os.remove(path)
    with pytest.raises(ModelError, match="no such file"):
        det.maybe_reload_model()
    assert [r.rule_id for r in det.inspect_batch([scam])[0]] == ["classifier.second"]


def test_sighup_reloads_the_model_without_dropping_a_bind(
    tmp_path: Path, models: tuple[TextClassifier, TextClassifier]
) -> None:
    asyncio.run(_sighup(tmp_path, models))


async def _sighup(tmp_path: Path, models: tuple[TextClassifier, TextClassifier]) -> None:
    model = tmp_path / "model.npz"
    put(model, models[0])
    log_path = tmp_path / "gw.log"
    async with SimulatedSmsc(smsc_config()) as sim:
        conf = tmp_path / "gw.toml"
        conf.write_text(
            f'[gateway]\nmode = "enforce"\ndata_dir = "{tmp_path}"\n'
            f'[detectors]\nmodel = "{model}"\n[mqtt]\nenabled = false\n[cases]\nenabled = false\n'
            f'[[smsc]]\nname = "smsc-p2p"\naddress = "127.0.0.1:{sim.port}"\n'
            f'system_id = "gw-p2p"\npassword = "pw"\nroute = "local"\n'
        )
        with log_path.open("wb") as log_file:
            proc = subprocess.Popen(  # noqa: ASYNC220 - a daemon under test, reaped in finally
                [sys.executable, "-m", "gateway.cli", "run", "-c", str(conf)],
                cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stderr=log_file,
            )  # fmt: skip
        try:
            await eventually(lambda: len(sim.accounts["gw-p2p"].links) == 1, timeout=60)
            bound = sim.accounts["gw-p2p"].links[0]
            url = f"sqlite+aiosqlite:///{tmp_path / 'fraudgate.db'}"  # data_dir's database

            async def rules_for(dest: str) -> list[str]:
                await send(sim.port, "subs", submit("77011230001", dest, SCAM))
                return await _rule_ids(url, dest)

            def log_lines(text: str) -> list[str]:
                lines = log_path.read_text(encoding="utf-8").splitlines()
                return [line for line in lines if text in line]

            assert "classifier.first" in await rules_for("77019990001")
            put(model, models[1])
            proc.send_signal(signal.SIGHUP)
            await eventually(lambda: bool(log_lines("classifier model reloaded")), timeout=20)
            assert "classifier.second" in await rules_for("77019990002")

            put(model, b"PK\x03\x04 broken")
            proc.send_signal(signal.SIGHUP)
            await eventually(lambda: bool(log_lines("model not reloaded")), timeout=20)
            assert "classifier.second" in await rules_for("77019990003")
            [line] = log_lines("model not reloaded")  # one line, naming the file and why
            assert f"keeping the one in use: {model}: not a fraudgate model file" in line
            assert sim.accounts["gw-p2p"].links == [bound]  # the same bind throughout
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0


async def _rule_ids(url: str, dest: str, timeout: float = 20.0) -> list[str]:
    """The rule ids of the verdict of the message to `dest`, once recorded."""
    query = (
        sa.select(verdicts.c.rule_ids)
        .select_from(messages.join(verdicts, verdicts.c.message_id == messages.c.id))
        .where(messages.c.dest == dest)
    )
    deadline = time.monotonic() + timeout
    async with await Store.open(url) as store:
        while True:
            async with store.engine.connect() as conn:
                found = (await conn.execute(query)).scalar()
            if found is not None:
                return list(found)
            assert time.monotonic() < deadline, f"no verdict for {dest}"
            await asyncio.sleep(0.1)
