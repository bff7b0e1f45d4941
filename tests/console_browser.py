"""Driving the console in a real headless Chromium (Debian's chromium + chromium-driver, through
Selenium): the driver, a login, the axe-core accessibility check and screenshots.

    driver = chromium()                      # fails, never skips, without the browser
    login(driver, base, token)
    violations = axe(driver)                 # axe-core's violations on the page shown
    shot(driver, "live")                     # var/test-artifacts/console/live.png

The browser runs as root in CI containers, hence --no-sandbox. The page's CSP (script-src
'self') does not apply to what WebDriver evaluates, so axe-core is injected with execute_script.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parent.parent
AXE = ROOT / "tests/interop/node/node_modules/axe-core/axe.min.js"
ARTIFACTS = ROOT / "var/test-artifacts/console"
SESSION_COOKIE = "fg_session"
WAIT = 10.0  # seconds a page may take to show what a step waits for
BLOCKING = ("serious", "critical")  # axe impacts that fail a page


def _binary(name: str, *alternatives: str) -> str:
    for candidate in (name, *alternatives):
        found = shutil.which(candidate)
        if found:
            return found
    pytest.fail(
        f"{name} not found: the console's browser tests need Debian's chromium and "
        "chromium-driver (./dev setup installs them)",
        pytrace=False,
    )


def chromium(lang: str = "ru") -> webdriver.Chrome:
    """A headless Chromium, 1366x900, in `lang`, with the browser's console log kept."""
    browser = _binary("chromium", "chromium-browser")
    driver_path = _binary("chromedriver")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--window-size=1366,900", f"--lang={lang}", "--no-first-run",
        "--disable-extensions", "--disable-background-networking",
    ):  # fmt: skip
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"intl.accept_languages": lang})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        driver = webdriver.Chrome(options=options, service=Service(driver_path))
    except WebDriverException as e:
        pytest.fail(f"chromium did not start through {driver_path}: {e.msg}", pytrace=False)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    return driver


def wait_for(
    driver: WebDriver, condition: Callable[[WebDriver], Any], what: str, timeout: float = WAIT
) -> Any:
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(
        condition, message=f"waited {timeout} s for {what}"
    )


def session_cookie(driver: WebDriver) -> dict[str, Any] | None:
    return driver.get_cookie(SESSION_COOKIE)


def sign_out(driver: WebDriver, base: str) -> None:
    """Forget every cookie of the console (a fresh browser, as far as the server can tell)."""
    driver.get(f"{base}/console/login")
    driver.delete_all_cookies()


def submit_login(driver: WebDriver, base: str, token: str) -> None:
    """Type `token` into the login form and send it (whatever the answer)."""
    sign_out(driver, base)
    driver.get(f"{base}/console/login")
    field = driver.find_element(By.ID, "token")
    field.clear()
    field.send_keys(token)
    driver.find_element(By.ID, "login-submit").click()
    wait_for(
        driver,
        lambda d: (
            d.execute_script("return document.readyState") == "complete"
            and (d.find_elements(By.ID, "login-error") or session_cookie(d) is not None)
        ),
        "the login's answer",
    )


def login(driver: WebDriver, base: str, token: str) -> None:
    """Signed in with `token`: the session cookie is set and the login form is gone."""
    submit_login(driver, base, token)
    assert session_cookie(driver) is not None, driver.page_source[:2000]
    assert not driver.find_elements(By.ID, "token")


def axe(driver: WebDriver) -> list[dict[str, Any]]:
    """axe-core's violations on the page shown (injected: WebDriver's scripts are not the
    page's, so its Content-Security-Policy does not stop them)."""
    if not AXE.is_file():
        pytest.fail(
            f"{AXE.relative_to(ROOT)} missing: run ./dev setup (npm install in tests/interop/node)",
            pytrace=False,
        )
    driver.execute_script(AXE.read_text(encoding="utf-8"))
    assert driver.execute_script("return typeof window.axe") == "object", "axe-core not loaded"
    result = driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        window.axe.run(document, {resultTypes: ["violations"]})
          .then((r) => done({violations: r.violations}))
          .catch((e) => done({error: String(e)}));
        """
    )
    assert "error" not in result, f"axe.run failed: {result['error']}"
    violations: list[dict[str, Any]] = result["violations"]
    return violations


def blocking(violations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [v for v in violations if v.get("impact") in BLOCKING]


def describe(violations: list[dict[str, Any]]) -> str:
    """Each violation's id, impact and help, with the nodes it names (selector and summary)."""
    lines = []
    for v in violations:
        lines.append(f"{v['id']} ({v.get('impact')}): {v.get('help')} — {v.get('helpUrl')}")
        for node in v.get("nodes", [])[:10]:
            target = json.dumps(node.get("target"), ensure_ascii=False)
            lines.append(f"    {target}: {node.get('failureSummary', '').strip()}")
            lines.append(f"      {node.get('html', '')[:200]}")
    return "\n".join(lines)


def shot(driver: WebDriver, name: str) -> Path:
    """A PNG of the page shown, written to var/test-artifacts/console/<name>.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    path.unlink(missing_ok=True)
    assert driver.save_screenshot(str(path)), f"no screenshot written to {path}"
    return path


def js_errors(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    """The browser console's errors since the last read (SEVERE entries)."""
    entries: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
    return [e for e in entries if e.get("level") == "SEVERE"]


def settle(seconds: float) -> None:
    """Let a page's scripts run (the live page's stream ticks once a second)."""
    time.sleep(seconds)
