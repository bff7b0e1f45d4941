"""The console in a real headless Chromium against the real daemon (issue 16).

One daemon for the module, in a thread with its own event loop: `gateway.daemon.Gateway` with
[cases], a probe modem (the modem simulator on a pty), the simulated switch and the simulated
anti-fraud centre over mutual TLS, the API and the console on a loopback port. The SIM-box case
comes the realistic way: the test-call partner announces a call to the probe and places it
through a SIM box; the probe sees the CLI of a local SIM, the probe manager records the finding,
the workflow opens the case; no policy confirms it on its own, so it waits for an analyst.

The browser then does what the people do: the analyst starts verification and confirms (the
switch blocks the SIM, the case is suspended, the centre gets the detection report with all the
subscriber's numbers); the help line sees the case masked and cannot decide; a wrong token and
a change without its CSRF token are refused. Screenshots go to var/test-artifacts/console/;
axe-core checks every page for serious or critical accessibility violations.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from console_browser import (
    axe,
    blocking,
    chromium,
    describe,
    js_errors,
    login,
    session_cookie,
    settle,
    shot,
    sign_out,
    submit_login,
    wait_for,
)
from fixtures_services import free_port
from harness import gateway_config, send, smsc_config, submit
from selenium.webdriver import Chrome
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.expected_conditions import staleness_of
from test_mqtt import wait_until

from gateway.alerts.payloads import mask_msisdn
from gateway.api.auth import hash_token
from gateway.cases import CaseFilter, Source, State
from gateway.config import GatewayConfig
from gateway.console import i18n
from gateway.daemon import Gateway
from gateway.iin import mask_iin
from gateway.probes.settings import ProbeSettings
from gateway.registry import Registry
from gateway.store import Store
from gateway.switch.config import SwitchSettings
from simulators.centre import CentreSimulator, make_certs
from simulators.modem import ModemProfile, ModemSimulator
from simulators.simbox import SIMBOX_SIMS, Partner
from simulators.switch import SwitchSimulator
from smsc.simulator import SimulatedSmsc

T = TypeVar("T")
IIN = "900101300017"  # synthetic (domain/KAZAKHSTAN.md)
CONTRACT = dt.date(2020, 1, 1)
OTHER_NUMBERS = ("+77015550101", "+77475550102")  # the SIM's holder holds these too
CSRF_NUMBER = "+77071239901"  # a second case, for the refused change
ROLES = ("analyst", "helpline", "supervisor", "auditor")
PROBE = "almaty-1"
START_TIMEOUT = 40.0  # the daemon, the probe's registration, the test call, the case
SMISHING = (  # as tests/test_gateway_e2e.py: a look-alike link and a code request
    "Құрметті клиент! Сіздің Kaspi картаңыз бұғатталды. Картаны бұғаттан шығару үшін "
    "kaspi-bank.kz-secure.com сілтемесіне өтіп, SMS кодты енгізіңіз. Әйтпесе шотыңыз жабылады."
)


@dataclass
class Lab:
    """The running daemon and its peers, as the browser tests see them."""

    base: str
    tokens: dict[str, str]  # role -> token
    sim: str  # the SIM-box SIM the probe saw ("+7...")
    numbers: tuple[str, ...]  # every number of the SIM's holder
    loop: asyncio.AbstractEventLoop
    gateway: Gateway
    switch: SwitchSimulator
    centre: CentreSimulator
    smsc_port: int = 0  # the simulated SMSC the daemon is bound to (account "subs" submits)
    case_id: str = ""
    csrf_case_id: str = ""
    started_in: float = 0.0
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
        """Run `coro` in the daemon's event loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def state(self, case_id: str) -> State:
        assert self.gateway.workflow is not None
        return (await self.gateway.workflow.cases.get(case_id)).state

    async def switch_state(self) -> dict[str, str]:
        return dict(self.switch.state)

    async def centre_documents(self) -> list[dict[str, Any]]:
        return [r.document for r in self.centre.reports.values()]


def _config(data: Path, tokens: dict[str, str]) -> GatewayConfig:
    cfg = GatewayConfig(data_dir=data / "data")
    cfg.mqtt.enabled = False
    cfg.cases.interval = 0.2
    cfg.probes.grace = 1.0
    cfg.probes.plans = [data / "plans"]
    cfg.api.listen = f"127.0.0.1:{free_port()}"
    cfg.api.tokens = tuple((hash_token(tokens[r]), f"{r}.browser", r) for r in ROLES)
    # the tests reload case pages while the switch answers: more look-ups than a person makes
    cfg.api.lookup_rate, cfg.api.lookup_burst = 6000.0, 1000
    return cfg


async def _seed(cfg: GatewayConfig, numbers: tuple[str, ...]) -> None:
    async with await Store.open(cfg.database_url) as store:
        await store.migrate()
        registry = Registry(store)
        await registry.register_person(IIN, "Иванов", "Иван", "Иванович")
        for n in numbers:
            await registry.register_number(IIN, n.lstrip("+"), contract_date=CONTRACT)


async def _daemon(data: Path, published: concurrent.futures.Future[Lab]) -> None:
    """Start everything, get the SIM-box case, hand the Lab over, run until asked to stop."""
    started = time.monotonic()
    tokens = {r: f"{r}-token-for-the-browser-test" for r in ROLES}
    cfg = _config(data, tokens)
    partner = Partner([PROBE], share={"simbox": 1.0}, sms_share=0.0, window=20.0, seed=3)
    [test] = partner.plan(1, start=time.time() + 1.0, spacing=1.0)
    assert test.route == "simbox" and test.cli in SIMBOX_SIMS
    (data / "plans").mkdir()
    (data / "plans" / "partner.json").write_text(partner.plan_file(), encoding="utf-8")
    numbers = (test.cli, *OTHER_NUMBERS)
    await _seed(cfg, numbers)
    certs = make_certs(data / "pki")
    profile = ModemProfile(imsi="401021111111111", msisdn="+77011110001")
    async with (
        ModemSimulator(profile, name=PROBE, link_dir=data) as modem,
        SwitchSimulator() as switch,
        CentreSimulator(certs) as centre,
        SimulatedSmsc(smsc_config()) as smsc,
    ):
        cfg.smsc = gateway_config(smsc.port, data).smsc  # bound to the SMSC: live traffic
        cfg.probes.probes = [ProbeSettings(PROBE, modem.url, poll_interval=0.5)]
        cfg.switch = SwitchSettings.http(switch.url, switch.token)
        c = cfg.centre
        c.url, c.operator = centre.url, "kcell"
        c.client_cert, c.client_key = map(str, certs.cert("operator", "client"))
        c.ca = str(certs.centre_ca)
        gateway = Gateway(cfg)
        stop = asyncio.Event()
        run = asyncio.create_task(gateway.run(stop))
        try:
            lab = Lab(f"http://{cfg.api.listen}", tokens, test.cli, numbers,
                      asyncio.get_running_loop(), gateway, switch, centre,
                      smsc_port=smsc.port)  # fmt: skip
            await _case_from_a_test_call(lab, partner, test, modem, run)
            lab.started_in = time.monotonic() - started
            published.set_result(lab)
            await lab._stop.wait()
        finally:
            stop.set()
            await asyncio.wait_for(run, 30)


async def _case_from_a_test_call(
    lab: Lab, partner: Partner, test: Any, modem: ModemSimulator, run: asyncio.Task[Any]
) -> None:
    gateway = lab.gateway
    ready = asyncio.ensure_future(gateway.ready.wait())
    await asyncio.wait({ready, run}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if run.done():
        run.result()  # the daemon's own error
    assert gateway.ready.is_set() and gateway.workflow is not None and gateway.probes
    probes = gateway.probes
    await wait_until(lambda: all(h.registered for h in probes.health.values()), 15, "probe up")
    await partner.place([test], {PROBE: modem}, clock=time.time, ring_interval=0.3)
    cases = gateway.workflow.cases

    async def opened() -> bool:
        return bool(await cases.list(CaseFilter(source=Source.DETECTION_SIMBOX, limit=10)))

    await wait_until(opened, 15, "the workflow opening a case from the probe's finding")
    [case] = await cases.list(CaseFilter(source=Source.DETECTION_SIMBOX, limit=10))
    assert list(case.numbers) == [lab.sim] and case.state is State.NEW and case.person_id
    lab.case_id = case.id
    other = await cases.open(
        source=Source.DETECTION_SIMBOX, numbers=[CSRF_NUMBER], received_at=time.time(),
        external_id="browser-test-csrf", reason="a second case for the refused change",
    )  # fmt: skip
    lab.csrf_case_id = other.id


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    data = tmp_path_factory.mktemp("console-browser")
    published: concurrent.futures.Future[Lab] = concurrent.futures.Future()

    def main() -> None:
        try:
            asyncio.run(_daemon(data, published))
        except BaseException as e:  # the fixture reports it, whenever it happens
            if not published.done():
                published.set_exception(e)
            else:
                raise

    thread = threading.Thread(target=main, name="console-browser-daemon", daemon=True)
    thread.start()
    the_lab = published.result(START_TIMEOUT)
    print(f"daemon, probe call and SIM-box case ready in {the_lab.started_in:.1f} s")
    try:
        yield the_lab
    finally:
        the_lab.loop.call_soon_threadsafe(the_lab._stop.set)
        thread.join(40)
        assert not thread.is_alive(), "the daemon did not stop"


@pytest.fixture(scope="module")
def driver() -> Iterator[Chrome]:
    d = chromium("ru")
    try:
        yield d
    finally:
        d.quit()


def case_state(driver: WebDriver) -> str:
    return str(driver.find_element(By.ID, "case-state").get_attribute("data-state"))


def decide(driver: WebDriver, action: str, reason: str, then: set[str]) -> None:
    """Type the reason, press the decision's button, until the case page shows a state of
    `then`. A refusal because the workflow's round touched the case meanwhile is tried once
    more (the documented answer to a concurrent update)."""
    for _ in range(2):
        before = driver.find_element(By.TAG_NAME, "html")
        driver.find_element(By.ID, f"reason-{action}").send_keys(reason)
        driver.find_element(By.ID, f"do-{action}").click()
        wait_for(driver, staleness_of(before), f"the page after {action}")
        wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "p.flash"), f"{action}")
        if case_state(driver) in then or not driver.find_elements(By.ID, f"do-{action}"):
            break
    flashes = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "p.flash")]
    assert case_state(driver) in then, f"{action}: the case is {case_state(driver)}: {flashes}"


def reload_until(driver: WebDriver, url: str, check: Any, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        driver.get(url)
        if check(driver):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{url}: waited {timeout} s for {what}")
        time.sleep(0.3)


def test_analyst_confirms_the_simbox_case_and_the_switch_and_centre_follow(
    lab: Lab, driver: WebDriver
) -> None:
    login(driver, lab.base, lab.tokens["analyst"])
    driver.get(f"{lab.base}/console/cases")
    rows = driver.find_elements(By.CSS_SELECTOR, '#case-queue tr[data-source="detection_simbox"]')
    [row] = [r for r in rows if r.get_attribute("data-case") == lab.case_id]
    assert row.get_attribute("data-state") == "new"
    assert lab.sim in row.text  # the analyst sees the number whole
    row.find_element(By.CSS_SELECTOR, "a").click()
    wait_for(driver, lambda d: d.find_elements(By.ID, "case-state"), "the case page")
    assert driver.current_url == f"{lab.base}/console/cases/{lab.case_id}"
    assert case_state(driver) == "new"
    assert driver.find_element(By.ID, "evidence-findings").is_displayed()

    decide(driver, "start_verification", "проверяю тестовый звонок пробы", {"verifying"})
    decide(driver, "confirm", "CLI местной SIM на международном вызове: SIM-бокс",
           {"confirmed", "suspended"})  # fmt: skip
    page = f"{lab.base}/console/cases/{lab.case_id}"
    reload_until(driver, page, lambda d: case_state(d) == "suspended", "suspended", 20)

    # point 120: the switch blocked the number the probe saw
    assert lab.call(lab.switch_state()).get(lab.sim) == "blocked"
    assert lab.call(lab.state(lab.case_id)) is State.SUSPENDED
    # point 118: the centre was told, with every number of the subscriber
    lab.call(lab.centre.wait_for(2, timeout=20), timeout=25)
    docs = {d["kind"]: d for d in lab.call(lab.centre_documents()) if d["case_id"] == lab.case_id}
    assert {"detection", "suspended"} <= set(docs)
    subscriber = docs["detection"]["subscriber"]
    assert subscriber["iin"] == IIN and sorted(subscriber["numbers"]) == sorted(lab.numbers)
    # and the case page says so
    reload_until(
        driver, page,
        lambda d: d.find_elements(By.CSS_SELECTOR, '#centre-reports tr[data-kind="detection"]'),
        "the detection report on the case page", 10,
    )  # fmt: skip
    kinds = {
        r.get_attribute("data-kind")
        for r in driver.find_elements(By.CSS_SELECTOR, "#centre-reports tbody tr")
    }
    assert "detection" in kinds
    switch_rows = driver.find_element(By.ID, "switch-actions").text
    assert lab.sim in switch_rows


def test_help_line_sees_the_case_masked_and_cannot_decide(lab: Lab, driver: WebDriver) -> None:
    login(driver, lab.base, lab.tokens["helpline"])
    driver.get(f"{lab.base}/console/cases/{lab.case_id}")
    wait_for(driver, lambda d: d.find_elements(By.ID, "case-state"), "the case page")
    html = driver.page_source
    for n in lab.numbers:
        assert n not in html and n.lstrip("+") not in html, f"{mask_msisdn(n)} shown whole"
    assert mask_msisdn(lab.sim) in driver.find_element(By.ID, "case-numbers").text
    assert IIN not in html
    assert driver.find_element(By.ID, "subscriber-iin").text == mask_iin(IIN)
    assert driver.find_element(By.ID, "no-actions").is_displayed()
    assert not driver.find_elements(By.ID, "do-confirm")
    assert not driver.find_elements(By.CSS_SELECTOR, "textarea[name=reason]")


def test_wrong_token_is_refused(lab: Lab, driver: WebDriver) -> None:
    submit_login(driver, lab.base, "not-a-token-of-anyone")
    assert driver.find_element(By.ID, "login-error").is_displayed()
    assert session_cookie(driver) is None
    driver.get(f"{lab.base}/console/cases")  # still signed out: back to the login form
    assert driver.current_url.endswith("/console/login")


def refused(driver: WebDriver) -> None:
    """The page is the CSRF refusal, answered 403, in the page's language."""
    wait_for(driver, lambda d: not d.find_elements(By.ID, "case-state"), "the refusal")
    lang = driver.find_element(By.TAG_NAME, "html").get_attribute("lang") or "ru"
    assert driver.find_element(By.TAG_NAME, "h1").text == i18n.translate(lang, "csrf")
    status = driver.execute_script(
        "return performance.getEntriesByType('navigation')[0].responseStatus"
    )
    assert status == 403


def test_change_without_csrf_token_is_refused(lab: Lab, driver: WebDriver) -> None:
    login(driver, lab.base, lab.tokens["analyst"])
    driver.get(f"{lab.base}/console/cases/{lab.csrf_case_id}")
    assert case_state(driver) == "new"
    driver.find_element(By.ID, "reason-start_verification").send_keys("без CSRF")
    driver.execute_script(
        "document.querySelector('#form-start_verification input[name=csrf]').value = 'forged';"
    )
    driver.find_element(By.ID, "do-start_verification").click()
    refused(driver)
    # the field removed altogether: refused as well
    driver.get(f"{lab.base}/console/cases/{lab.csrf_case_id}")
    driver.find_element(By.ID, "reason-start_verification").send_keys("без CSRF")
    driver.execute_script(
        "document.querySelector('#form-start_verification input[name=csrf]').remove();"
    )
    driver.find_element(By.ID, "do-start_verification").click()
    refused(driver)
    assert lab.call(lab.state(lab.csrf_case_id)) is State.NEW
    driver.get(f"{lab.base}/console/cases/{lab.csrf_case_id}")
    assert case_state(driver) == "new"


def test_live_page_shows_caught_sms_as_they_arrive_and_screenshots(
    lab: Lab, driver: WebDriver
) -> None:
    """SMS submitted to the SMSC reach the open live page by themselves: the smishing one with
    its rules and matched spans marked, the recipient masked; the ordinary one counted only."""
    login(driver, lab.base, lab.tokens["analyst"])
    driver.get(f"{lab.base}/console/")
    settle(1.5)  # the history drawn, a tick or two
    assert driver.find_elements(By.CSS_SELECTOR, "#live-rows tr") == []
    for source, dest, text in (("77051230001", "77017654321", SMISHING),
                               ("77051230002", "77017654322", "Купи хлеб")):  # fmt: skip
        assert set(lab.call(send(lab.smsc_port, "subs", submit(source, dest, text)))) == {0}

    def caught() -> list[Any]:
        return driver.find_elements(By.CSS_SELECTOR, "#live-rows tr")

    deadline = time.monotonic() + 10
    while not caught() and time.monotonic() < deadline:
        settle(0.3)
    [row] = caught()
    text = row.text
    assert "77051230001" in text and "7701***4321" in text and "77017654321" not in text
    marks = [m.text for m in row.find_elements(By.TAG_NAME, "mark")]
    assert marks and all(m in SMISHING for m in marks), marks
    assert "url." in text or "content." in text, text
    assert "Купи хлеб" not in driver.page_source  # allowed: counted, not listed
    live = shot(driver, "live")
    driver.get(f"{lab.base}/console/cases/{lab.case_id}")
    case = shot(driver, "case")
    for path in (live, case):
        data = path.read_bytes()
        assert len(data) > 1000 and data[:8] == b"\x89PNG\r\n\x1a\n", path


PAGES = {  # role -> the pages axe-core checks
    "": ["/console/login"],
    "analyst": ["/console/", "/console/cases", "/console/cases/{case}", "/console/subscribers",
                "lookup {sim}"],
    "auditor": ["/console/audit"],
}  # fmt: skip


def test_axe_runs_under_the_console_csp_and_finds_what_is_wrong(lab: Lab, driver: Chrome) -> None:
    """The page's CSP is in force (an inline script the page would add is not run), yet axe-core
    injected by WebDriver runs, and reports a fault put into the page."""
    sign_out(driver, lab.base)
    driver.get(f"{lab.base}/console/login")
    ran = driver.execute_script(
        "const s = document.createElement('script');"
        "s.textContent = 'window.inlineRan = true;';"
        "document.head.appendChild(s); return window.inlineRan === true;"
    )
    assert ran is False, "an inline script ran: no Content-Security-Policy in force"
    assert not [v for v in axe(driver) if v["id"] == "image-alt"]
    driver.execute_script(
        "const i = document.createElement('img'); i.src = '/console/static/none.png';"
        "document.querySelector('main').appendChild(i);"
    )
    assert "image-alt" in {v["id"] for v in blocking(axe(driver))}
    js_errors(driver)  # the CSP report and the missing image: expected here


def test_pages_have_no_serious_accessibility_violations(lab: Lab, driver: WebDriver) -> None:
    found: dict[str, str] = {}
    for role, pages in PAGES.items():
        if role:
            login(driver, lab.base, lab.tokens[role])
        else:
            sign_out(driver, lab.base)
        for page in pages:
            path = page.format(case=lab.case_id, sim=lab.sim.lstrip("+"))
            if path.startswith("lookup "):  # a look-up is POSTed from its form
                driver.get(f"{lab.base}/console/subscribers")
                driver.find_element(By.ID, "msisdn").send_keys(path.split()[1])
                driver.find_element(By.ID, "lookup-submit").click()
                assert driver.find_elements(By.ID, "subscriber-iin"), "the look-up found no one"
                assert "msisdn" not in driver.current_url  # the number is not in the URL
            else:
                driver.get(lab.base + path)
            if path == "/console/":
                settle(1.0)  # the live page's first events drawn
            violations = axe(driver)
            bad = blocking(violations)
            print(f"axe {role or 'anonymous'} {path}: {sorted(v['id'] for v in violations)}")
            if bad:
                found[f"{role or 'anonymous'} {path}"] = describe(bad)
    assert not found, "\n".join(f"{page}:\n{text}" for page, text in found.items())


def test_live_page_has_no_javascript_errors(lab: Lab, driver: Chrome) -> None:
    login(driver, lab.base, lab.tokens["analyst"])
    js_errors(driver)  # what earlier pages logged
    driver.get(f"{lab.base}/console/")
    settle(2.5)  # history, then a couple of ticks
    # the browser's own request for /favicon.ico (answered 401 by the API beside the console)
    # is no error of the page's
    icon = f"{lab.base}/favicon.ico "
    errors = [e for e in js_errors(driver) if not str(e.get("message", "")).startswith(icon)]
    assert not errors, "\n".join(e.get("message", "") for e in errors)
    scripts = [s.get_attribute("src") for s in driver.find_elements(By.CSS_SELECTOR, "script")]
    assert any(s and s.endswith("/console/static/live.js") for s in scripts), scripts
