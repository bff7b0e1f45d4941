"""The feedback loop in the running daemon: an analyst's "this flag was wrong" over the HTTP API
lets the sender's next SMS through the simulated SMSC (allowed, recorded with the reason), until
it is revoked; and the [feedback] configuration section."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import tomllib
from pathlib import Path

import httpx
import pytest
from fixtures_services import free_port
from harness import eventually, gateway_config, send, smsc_config, start_gateway, submit

from gateway.config import DEFAULT_CONFIG, from_toml
from gateway.config_check import ConfigError
from gateway.domain import Decision, Inspected
from smsc.simulator import SimulatedSmsc

TOKEN = "analyst-token-for-the-feedback-test"
OTP = "Растау коды: {}. Ешкімге айтпаңыз"  # a one-time code from a local SIM: grey route, flagged
SENDER = "77011230001"


async def test_a_wrong_flag_exempts_the_sender_in_the_running_daemon(tmp_path: Path) -> None:
    async with SimulatedSmsc(smsc_config()) as sim:
        cfg = gateway_config(sim.port, tmp_path)
        cfg.cases.enabled = True  # the API and the exemptions' refresher are built there
        port = free_port()
        cfg.api.listen = f"127.0.0.1:{port}"
        cfg.api.tokens = ((hashlib.sha256(TOKEN.encode()).hexdigest(), "u-a", "analyst"),)
        gw = await start_gateway(cfg)
        seen = gw.inspected

        async def sms(source: str, code: str) -> Inspected:
            before = len(seen)
            await send(sim.port, "subs", submit(source, "77019990001", OTP.format(code)))
            await eventually(lambda: len(seen) > before, timeout=20)
            return seen[-1]

        try:
            first = await sms(SENDER, "0338")
            assert first.verdict.decision is Decision.FLAG, first.verdict.rule_ids
            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}", headers=headers
            ) as api:
                # the record reaches the database with the recorder's next batch, after the
                # verdict: until then the API rightly answers 404 for the message
                deadline = asyncio.get_running_loop().time() + 10
                body = {"verdict": "wrong", "scope": "sender", "reason": "the bank's OTP SIM"}
                while True:
                    r = await api.post(f"/v1/messages/{first.sms.id}/feedback", json=body)
                    if r.status_code != 404 or asyncio.get_running_loop().time() > deadline:
                        break
                    await asyncio.sleep(0.05)
                assert r.status_code == 201, r.text
                exemption = r.json()["id"]

                again = await sms(SENDER, "5512")
                assert again.verdict.decision is Decision.ALLOW
                assert again.verdict.rule_ids[0] == f"feedback.exempt.{exemption}"
                assert again.alerts == []
                other = await sms("77011230002", "5512")
                assert other.verdict.decision is Decision.FLAG

                r = await api.request(
                    "DELETE", f"/v1/feedback/{exemption}", json={"reason": "SIM reassigned"}
                )
                assert r.status_code == 200, r.text
                revoked = await sms(SENDER, "7731")
                assert revoked.verdict.decision is Decision.FLAG
        finally:
            await gw.finish()


BASE = tomllib.loads(DEFAULT_CONFIG.read_text(encoding="utf-8"))


def test_feedback_section_defaults_and_errors_name_the_key() -> None:
    f = from_toml(copy.deepcopy(BASE)).feedback
    assert (f.default_hours, f.max_hours, f.max_active, f.refresh) == (24.0, 168.0, 10_000, 5.0)
    for values, message in [
        ({"default_hours": 200.0}, r"feedback\.default_hours: 200 is over feedback\.max_hours"),
        ({"max_hours": 0}, r"feedback\.max_hours"),
        ({"max_active": 0}, r"feedback\.max_active"),
        ({"refresh": 0.01}, r"feedback\.refresh"),
        ({"hours": 1}, r"feedback\.hours: unknown key"),
    ]:
        data = copy.deepcopy(BASE)
        data["feedback"].update(values)
        with pytest.raises(ConfigError, match=message):
            from_toml(data)


async def test_refresher_runs_with_the_daemon_and_stops_with_it(tmp_path: Path) -> None:
    def refreshers() -> list[asyncio.Task[object]]:
        return [t for t in asyncio.all_tasks() if t.get_name() == "exemptions" and not t.done()]

    async with SimulatedSmsc(smsc_config()) as sim:
        cfg = gateway_config(sim.port, tmp_path)
        cfg.cases.enabled = True
        cfg.feedback.refresh = 0.1
        gw = await start_gateway(cfg)
        assert len(refreshers()) == 1
        await asyncio.sleep(0.3)
        await gw.finish()
    assert refreshers() == []
