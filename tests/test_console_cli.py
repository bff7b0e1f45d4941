"""`fraudgate console -c FILE`: the console alone over a configuration's database (a real
process on a free port, real HTTP), and what `fraudgate cases list` says with no case."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import httpx
import pytest
from fixtures_services import free_port
from helpers.console import Process, cases_page, console_process, sign_in

from gateway.api import hash_token
from gateway.cases.factory import build_cases
from gateway.cli import main
from gateway.config import load
from gateway.console.i18n import EN
from gateway.domain import Decision, Inspected, Reason, SmsEvent, Verdict
from gateway.store import Store
from gateway.switch.config import open_switch

TOKEN = "console-cli-analyst-token-5d1e"
NUMBER = "+77011234567"


def _config(tmp_path: Path, *, listen: bool = True, tokens: bool = True, extra: str = "") -> Path:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    text = f'[gateway]\ndata_dir = "{data}"\n'
    if listen:
        text += f'\n[api]\nlisten = "127.0.0.1:{free_port()}"\n'
    if tokens:
        text += f'\n[[api.token]]\nsha256 = "{hash_token(TOKEN)}"\nuser = "u-a"\nrole = "analyst"\n'
    path = tmp_path / "fraudgate.toml"
    path.write_text(text + extra, encoding="utf-8")
    return path


def _open_case(config: Path) -> str:
    """A complaint case in the configuration's database, opened as the daemon's Cases do."""

    async def seed() -> str:
        cfg = load(config)
        async with await Store.open(cfg.database_url) as store, open_switch(cfg.switch) as sw:
            await store.migrate()
            case = await build_cases(cfg, store, sw).open(
                source="complaint", numbers=[NUMBER], received_at=time.time()
            )
            return case.id

    return asyncio.run(seed())


def test_cases_list_says_no_cases(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path)
    assert main(["cases", "list", "-c", str(config)]) == 0  # -c after the action too
    assert capsys.readouterr().out == "no cases\n"
    case_id = _open_case(config)
    assert main(["cases", "-c", str(config), "list"]) == 0
    out = capsys.readouterr().out
    assert case_id in out and "no cases" not in out and NUMBER not in out  # masked
    assert main(["cases", "list", "-c", str(config), "--state", "closed"]) == 0
    assert capsys.readouterr().out == "no cases in state closed\n"


@pytest.mark.parametrize(
    ("listen", "tokens", "said"),
    [(False, True, "no [api] listen"), (True, False, "no [[api.token]]")],
)
def test_console_refuses_a_configuration_without_address_or_tokens(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], listen: bool, tokens: bool, said: str
) -> None:
    config = _config(tmp_path, listen=listen, tokens=tokens)
    assert main(["console", "-c", str(config)]) == 2
    err = capsys.readouterr().err
    assert said in err and len(err.strip().splitlines()) == 1, err


def test_console_refuses_an_address_in_use(tmp_path: Path) -> None:
    config = _config(tmp_path)
    address = load(config).api.listen
    with console_process(config):
        second = Process("console", "-c", str(config))
        rc, _out, err = second.finish(60)
    assert rc == 2 and "cannot listen" in err and address.split(":")[1] in err, err
    assert "Traceback" not in err


def test_console_alone_serves_the_databases_cases(tmp_path: Path) -> None:
    config = _config(tmp_path)
    case_id = _open_case(config)
    listen = load(config).api.listen
    with console_process(config) as url:
        assert url == f"http://{listen}"
        page = cases_page(url, TOKEN)
        assert f"/console/cases/{case_id}" in page
        with httpx.Client(base_url=url, timeout=10.0) as client:
            assert sign_in(client, TOKEN).status_code == 303
            live = client.get("/console/?lang=en")  # no traffic here, and the page says so
            assert live.status_code == 200 and EN["live.none"].split("(")[0] in live.text
        with httpx.Client(base_url=url, timeout=10.0) as client:
            assert sign_in(client, "not-a-token").status_code != 303  # no session
            assert client.get("/v1/cases").status_code == 401  # the API beside it, same tokens
            headers = {"authorization": f"Bearer {TOKEN}"}
            cases = client.get("/v1/cases", headers=headers)
            assert cases.status_code == 200 and case_id in cases.text


def test_console_listen_option_overrides_the_configuration(tmp_path: Path) -> None:
    config = _config(tmp_path)
    port = free_port()
    with console_process(config, "--listen", f"127.0.0.1:{port}") as url:
        assert url == f"http://127.0.0.1:{port}"
        assert not re.search(r"/console/cases/[0-9a-f]{32}", cases_page(url, TOKEN))  # none


def _flagged_message(config: Path) -> str:
    """A flagged SMS in the configuration's database, as the daemon records one."""

    async def seed() -> str:
        cfg = load(config)
        sms = SmsEvent("77011112233", "77019998877", "Код подтверждения 4821", smsc="smsc-p2p")
        code = Reason("content", "content.ru.code_request", 0.6, "asks for a code")
        async with await Store.open(cfg.database_url) as store:
            await store.migrate()
            await store.record([Inspected(sms, Verdict(0.6, Decision.FLAG, [code]))])
        return sms.id

    return asyncio.run(seed())


def test_console_applies_the_configured_feedback_limits(tmp_path: Path) -> None:
    """[feedback] max_hours = 2: the console's API refuses a 3-hour exemption (the default
    limit, 168 hours, would grant it) and grants a 2-hour one, as the daemon's would."""
    config = _config(tmp_path, extra="\n[feedback]\ndefault_hours = 1\nmax_hours = 2\n")
    message_id = _flagged_message(config)
    body = {"verdict": "wrong", "scope": "sender", "reason": "the bank's own notice"}
    headers = {"authorization": f"Bearer {TOKEN}"}
    with console_process(config) as url, httpx.Client(base_url=url, timeout=10.0) as client:
        path = f"/v1/messages/{message_id}/feedback"
        refused = client.post(path, json=body | {"hours": 3}, headers=headers)
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"] == "hours_out_of_range"
        assert "at most 2 hours" in refused.json()["detail"]
        granted = client.post(path, json=body | {"hours": 2}, headers=headers)
        assert granted.status_code == 201, granted.text
