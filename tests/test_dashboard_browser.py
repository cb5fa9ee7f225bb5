"""The dashboard in a real headless Chromium, against the real service over HTTP (tests/browser.py).

An admin logs in, finds the paused account on the overview, opens it, reads why it was paused,
resumes it, and the MTA's answer (GET /v1/policy, docs/mta.md) changes from defer to allow. Then
every main page is opened at desktop size and the overview at phone size, and screenshots are
written under var/screenshots/ (not committed) for a person to look at; their paths are printed.

One backend (SQLite) is enough here: the pages' queries run on both backends in their own tests.
The expected numbers come from the seeded scenario (tests/demo_data.py): 20 of the 80 recipients
of the compromised account in the last hour were refused as spam or blocked, 25 %, over the 20 %
of block-bounce-rate-pause (config/rules.toml); a paused sender is told defer and a resumed one is
on probation, ``watch``, and told allow (docs/rules.md, docs/mta.md).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser import DESKTOP, PHONE, WAIT_SECONDS, Service, chromium, log_in, screenshot, service
from tests.browser import viewport as set_viewport
from tests.demo_data import BLOCKED, COMPROMISED, NEWSLETTER, SENDS

POLICY_SECONDS = 15  # the node refreshes every second ([policy].refresh_seconds); slack for load
RULE = "block-bounce-rate-pause"
SHOTS: list[Path] = []


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with service(tmp_path_factory.mktemp("dashboard-browser")) as started:
        yield started


@pytest.fixture(scope="module", autouse=True)
def report_screenshots(request: pytest.FixtureRequest) -> Iterator[None]:
    """Print where the screenshots are when the module is done (outside pytest's output capture)."""
    yield
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if SHOTS and capture is not None:
        with capture.global_and_fixture_disabled():  # what capsys.disabled() does
            print("\nscreenshots of the dashboard:\n" + "\n".join(f"  {path}" for path in SHOTS))


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    with chromium(DESKTOP) as driver:
        yield driver


def shot(driver: webdriver.Chrome, name: str) -> None:
    SHOTS.append(screenshot(driver, name))


def wait_for(driver: webdriver.Chrome, css: str) -> WebElement:
    """The first element matching ``css``, waiting for it up to WAIT_SECONDS."""
    element: WebElement = WebDriverWait(driver, WAIT_SECONDS).until(
        lambda d: d.find_element(By.CSS_SELECTOR, css))
    return element


def no_error_page(driver: webdriver.Chrome) -> None:
    heading = driver.find_element(By.TAG_NAME, "h1").text
    refused = re.search(r"error|not found|forbidden|expired", heading, re.IGNORECASE)
    assert not refused, (driver.current_url, heading)


def policy_action(running: Service, account: str) -> dict[str, Any]:
    return running.policy(account=account, recipient="someone@gmail.com", protocol_state="RCPT")


def test_an_admin_finds_the_paused_account_reads_why_and_resumes_it(running: Service,
                                                                  browser: webdriver.Chrome) -> None:
    account = COMPROMISED.value
    before = policy_action(running, account)
    assert (before["action"], before["rule"]) == ("defer", RULE)

    browser.get(running.url("/"))
    wait_for(browser, "form input[name=password]")
    assert "/login" in browser.current_url  # the dashboard is not open to anonymous visitors
    shot(browser, "login")
    log_in(browser, running)
    assert browser.current_url == running.url("/")

    # The overview lists the account among the senders stopped now, with its rule.
    stopped = wait_for(browser, "table#stopped")
    row = stopped.find_element(By.XPATH, f".//tr[.//a[normalize-space()='{account}']]")
    assert "paused" in row.text and RULE in row.text
    shot(browser, "overview")
    row.find_element(By.LINK_TEXT, account).click()

    # Its page explains the pause with the seed's numbers.
    decision = wait_for(browser, "#decision")
    assert browser.find_element(By.CSS_SELECTOR, "h1 .badge").text == "paused"
    explanation = decision.find_element(By.CSS_SELECTOR, ".explanation").text
    assert RULE in explanation
    numbers = [int(n) for n in re.findall(r"\b\d+\b", explanation)]
    assert BLOCKED in numbers and SENDS in numbers, explanation
    assert f"{100 * BLOCKED / SENDS:.0f}" in explanation  # 25 (%)
    assert "defer" in decision.text  # what the MTA is told
    # The evidence names where the refused mail went (the seed writes to these three providers).
    assert any(domain in decision.text for domain in ("gmail.com", "yahoo.com", "outlook.com")), decision.text
    shot(browser, "identity-paused")

    # A sample bounce links to its raw message, which was stored whole and shows who sent it.
    identity_url = browser.current_url
    raw = decision.find_element(By.XPATH, ".//tr[contains(., '5.7.1')]//a[contains(@href, '/messages/')]")
    browser.get(raw.get_attribute("href") or "")
    message = wait_for(browser, "main").text
    assert "5.7.1" in message and account in message
    browser.get(identity_url)

    resume = browser.find_element(By.XPATH, "//form[.//input[@name='action' and @value='resume']]")
    resume.find_element(By.NAME, "reason").send_keys("password reset, malware removed from the PC")
    paused_badge = browser.find_element(By.CSS_SELECTOR, "h1 .badge")
    resume.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    # The post redirects to the page again: wait until the old page is gone, then read the new one
    # (reading the badge while the page is being replaced raced with it).
    WebDriverWait(browser, WAIT_SECONDS).until(staleness_of(paused_badge))
    assert wait_for(browser, "h1 .badge").text == "watch"  # probation (docs/rules.md)
    overrides = browser.find_element(By.ID, "overrides").text
    assert "resume" in overrides and running.user in overrides and "password reset" in overrides
    shot(browser, "identity-resumed")

    deadline = time.monotonic() + POLICY_SECONDS
    answer = policy_action(running, account)
    while answer["action"] != "allow" and time.monotonic() < deadline:
        time.sleep(0.2)
        answer = policy_action(running, account)
    assert (answer["action"], answer["postfix_action"]) == ("allow", "DUNNO")


@pytest.mark.parametrize(("path", "name", "expected"), [
    ("/events", "events", NEWSLETTER.value),
    ("/quarantine", "quarantine", None),
    ("/rules", "rules", RULE),
    ("/reports", "reports", None),  # the week is checked below, from the scenario
    ("/notifications", "notifications", None),
])
def test_every_main_page_opens_and_shows_the_seeded_data(running: Service, browser: webdriver.Chrome,
                                                         path: str, name: str, expected: str | None) -> None:
    log_in(browser, running, path)  # the first page after a failed test may need a login
    assert browser.current_url == running.url(path), browser.current_url
    no_error_page(browser)
    body = browser.find_element(By.TAG_NAME, "body").text
    if expected is not None:
        assert expected in body
    if name == "reports":
        assert running.scenario.report_week in body
    shot(browser, name)


def test_the_overview_fits_a_phone(running: Service, browser: webdriver.Chrome) -> None:
    set_viewport(browser, PHONE, mobile=True)
    try:
        log_in(browser, running)
        assert browser.execute_script("return window.innerWidth") == PHONE[0]
        # Nothing wider than the screen: wide tables scroll inside their own box.
        overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the overview is {overflow} px wider than a {PHONE[0]} px phone"
        assert browser.find_element(By.CSS_SELECTOR, "nav").is_displayed()
        shot(browser, "overview-phone")
    finally:
        set_viewport(browser, DESKTOP)
