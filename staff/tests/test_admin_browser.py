"""An ops member signs in to the admin in a real browser (headless Chromium from the system's
packages, driven by Selenium) and reads the audit log and a call: masks, never digits."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from audit.models import AuditEvent
from calls.models import CallSession
from conftest import OPEN_CARD, PASSWORD, PLANTED, make_staff, standalone, totp_now

CHROMIUM = os.environ.get("SECUREGATHER_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("SECUREGATHER_CHROMEDRIVER", "/usr/bin/chromedriver")
# Root in a container: no sandbox; nothing that calls out to the network on its own.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1024",
]


def browser_missing() -> str | None:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not shutil.which(path)]
    if not missing:
        return None
    return f"{', '.join(missing)} not installed (Debian: chromium, chromium-driver)"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    if reason := browser_missing():
        # .ci/run installs the browser: in CI its absence is a failure, never a skip.
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def page_text(driver: webdriver.Chrome) -> str:
    return driver.page_source + driver.find_element(By.TAG_NAME, "body").text


def assert_no_planted_digits(driver: webdriver.Chrome) -> None:
    text = page_text(driver)
    assert [d for d in PLANTED if standalone(d).search(text)] == [], driver.current_url


def test_ops_reads_the_audit_log_and_a_call_with_masks_only(live_server, browser, calls_made):
    olive = make_staff("olive", ops=True)
    open_call = CallSession.objects.get(state="awaiting_pin")
    assert open_call.card is not None  # OPEN_CARD is sealed on it right now
    wait = WebDriverWait(browser, 15)

    browser.get(f"{live_server.url}/admin/login/?next=/admin/")
    browser.find_element(By.NAME, "username").send_keys("olive")
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.NAME, "otp_token").send_keys(totp_now(olive))
    browser.find_element(By.CSS_SELECTOR, "#login-form [type=submit]").click()
    wait.until(expected_conditions.url_to_be(f"{live_server.url}/admin/"))
    # The admin's CSS upper-cases this line.
    assert "welcome, olive" in browser.find_element(By.ID, "user-tools").text.lower()

    browser.get(f"{live_server.url}/admin/audit/auditevent/")
    rows = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    assert len(rows) > 10
    assert "card_entered" in page_text(browser)
    assert "**********06" in page_text(browser)
    assert_no_planted_digits(browser)

    browser.get(f"{live_server.url}/admin/calls/callsession/{open_call.pk}/change/")
    card = browser.find_element(By.CSS_SELECTOR, ".field-card_sealed .readonly").text
    assert card == "•••• (key test2)"
    assert browser.find_element(By.CSS_SELECTOR, ".field-pin_sealed .readonly").text == "—"
    assert not standalone(OPEN_CARD).search(page_text(browser))
    assert_no_planted_digits(browser)
    assert not browser.find_elements(By.NAME, "_save")

    log_read, viewed = AuditEvent.objects.filter(event="record_viewed").order_by("id")
    assert (log_read.actor, log_read.detail["model"]) == ("olive", "audit.AuditEvent")
    assert (viewed.actor, viewed.channel, viewed.call_sid) == ("olive", "admin", open_call.call_sid)
    signed_in = AuditEvent.objects.get(event="staff_login", actor="olive")
    assert "Chrome" in signed_in.user_agent
