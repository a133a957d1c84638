"""An ops member signs in to the admin in a real browser (headless Chromium from the system's
packages, driven by Selenium) and reads the audit log and a call: masks, never digits. And works
the ops desk: the dashboard, a call found by the caller's full number, its trail, the lockouts.

Screenshots of the dashboard and of a search go to $SECUREGATHER_SCREENSHOTS (default
.artifacts/screenshots beside manage.py), for the test run to keep."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote_plus

import pytest
from django.utils import timezone
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from accounts.models import Lockout
from audit.models import AuditEvent
from audit.verification import verify_log
from calls.models import CallSession
from conftest import (
    CALLER,
    CARD,
    OPEN_CARD,
    PASSWORD,
    PLANTED,
    WRONG_PIN,
    make_staff,
    standalone,
    totp_now,
)

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


# The laptop screen ops work on: every list must fit it.
DESK_WIDTH, DESK_HEIGHT = 1366, 900
SCREENSHOTS = Path(
    os.environ.get(
        "SECUREGATHER_SCREENSHOTS",
        Path(__file__).resolve().parents[2] / ".artifacts" / "screenshots",
    )
)
# The spellings of one number that ops paste from a ticket or type from a caller.
SPELLINGS = ["+1 500 555 0006", "+1 (500) 555-0006", "+15005550006"]
assert CALLER == "+15005550006"
# A caller locked out after wrong PINs, beside the calls of calls_made.
LOCKED_CALLER = "+15005550077"


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
    # Chromium's record of each request it sends (its DevTools Network events): the addresses a
    # search went through, redirects included.
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
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


def assert_no_number_in(text: str, *numbers: str) -> None:
    """No caller's number, in any spelling, in ``text``: national digits apart from the country
    code, with any spaces, brackets or dashes between them."""
    for number in numbers:
        national = number[2:]  # "+1" off
        spread = r"[\s().-]*".join(national)
        pattern = rf"(?<![0-9A-Za-z])(?:\+?1[\s().-]*)?{spread}(?![0-9A-Za-z])"
        assert not re.search(pattern, text), number


def assert_no_full_number(driver: webdriver.Chrome, *numbers: str) -> None:
    """No caller's number in the page or its address."""
    for text in (page_text(driver), unquote_plus(driver.current_url)):
        assert_no_number_in(text, *numbers)


def sign_in(driver: webdriver.Chrome, url: str, user) -> None:
    driver.get(f"{url}/admin/login/?next=/admin/")
    driver.find_element(By.NAME, "username").send_keys(user.username)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.NAME, "otp_token").send_keys(totp_now(user))
    driver.find_element(By.CSS_SELECTOR, "#login-form [type=submit]").click()
    WebDriverWait(driver, 15).until(expected_conditions.url_to_be(f"{url}/admin/"))


def overflow(driver: webdriver.Chrome) -> dict[str, int]:
    """How far the changelist's table reaches past its box, and the page past the window."""
    return driver.execute_script(
        "const r = document.querySelector('#changelist .results');"
        "const d = document.documentElement;"
        "return {table: r.scrollWidth - r.clientWidth, page: d.scrollWidth - d.clientWidth};"
    )


def requested(driver: webdriver.Chrome) -> list[tuple[str, str]]:
    """The (method, address) of each request the browser sent since last asked."""
    sent = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            request = message["params"]["request"]
            sent.append((request["method"], request["url"]))
    return sent


def search(driver: webdriver.Chrome, text: str) -> None:
    """Type ``text`` into the list's search box and send it as ops do: posted, then redirected
    to the list by the number's digests. No address the browser asked for holds the number,
    not even the first one."""
    form = driver.find_element(By.ID, "changelist-search")
    assert form.get_attribute("method") == "post"
    action = form.get_attribute("action")
    requested(driver)  # what the page before sent, left out
    box = driver.find_element(By.ID, "searchbar")
    box.clear()
    box.send_keys(text)
    box.submit()
    WebDriverWait(driver, 15).until(expected_conditions.url_contains("q=caller"))
    # Chromium hands over its network log a little after the page it loaded: read until both
    # requests are in it, or the wait ends and the assertions below say what was missing.
    sent: list[tuple[str, str]] = []

    def both_sent(driver: webdriver.Chrome) -> bool:
        sent.extend(requested(driver))
        posted = ("POST", action) in sent
        return posted and any(method == "GET" and "q=caller" in url for method, url in sent)

    with contextlib.suppress(TimeoutException):
        WebDriverWait(driver, 15, poll_frequency=0.2).until(both_sent)
    assert ("POST", action) in sent, sent
    assert any(method == "GET" and "q=caller" in url for method, url in sent), sent
    for _, url in sent:
        assert_no_number_in(unquote_plus(url), CALLER)


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


def lock_out_a_caller(call) -> None:
    """Wrong PINs from LOCKED_CALLER until a lock (of the caller, or of the account: with
    SECUREGATHER_LOCKOUT_FAILURES at 2, whichever comes first) refuses its third call."""
    call.caller = LOCKED_CALLER
    for n in range(3):
        call.call_sid = "CA" + "ef" * 15 + f"{n:02d}"
        call.start()
        call.card(CARD)
        call.pin(WRONG_PIN)
        call.status()


def test_ops_finds_a_call_by_the_callers_number_from_the_dashboard(
    live_server, browser, calls_made, call, settings
):
    settings.SECUREGATHER_LOCKOUT_FAILURES = 2
    lock_out_a_caller(call)
    locked = [lock.masked_key for lock in Lockout.objects.filter(locked_until__gt=timezone.now())]
    assert locked
    verify_log()
    olive = make_staff("olive", ops=True)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.set_window_size(DESK_WIDTH, DESK_HEIGHT)
    sign_in(browser, live_server.url, olive)

    # The dashboard: the calls just made, the lock, the last verification.
    dashboard = browser.find_element(By.ID, "dashboard")
    calls = dashboard.find_element(By.ID, "desk-calls").text
    assert "7 calls started" in calls  # calls_made's 4 and 3 from the locked caller
    assert dashboard.find_elements(By.CSS_SELECTOR, "#desk-calls svg rect")
    assert "intact" in dashboard.find_element(By.ID, "desk-verification").text
    locks = dashboard.find_element(By.ID, "desk-locks")
    assert len(locks.find_elements(By.CSS_SELECTOR, "a")) == len(locked)
    assert all(who in locks.text for who in locked)
    # Ops' role views no key records and is no superuser: those sections are not there.
    assert not browser.find_elements(By.ID, "desk-keys")
    assert not browser.find_elements(By.ID, "desk-checks")
    assert not browser.find_elements(By.CSS_SELECTOR, "script[src^='http']")
    browser.save_screenshot(str(SCREENSHOTS / "dashboard.png"))
    assert_no_planted_digits(browser)
    assert_no_full_number(browser, CALLER, LOCKED_CALLER)

    # The audit log, searched by the caller's number as ops may be given it.
    browser.get(f"{live_server.url}/admin/audit/auditevent/")
    browser.save_screenshot(str(SCREENSHOTS / "audit-log.png"))
    assert overflow(browser) == {"table": 0, "page": 0}
    for n, spelling in enumerate(SPELLINGS):
        search(browser, spelling)
        callers = {c.text for c in browser.find_elements(By.CSS_SELECTOR, "td.field-caller")}
        assert callers == {"**********06"}, spelling
        if n == 0:
            browser.save_screenshot(str(SCREENSHOTS / "search.png"))
            assert overflow(browser) == {"table": 0, "page": 0}
        assert_no_planted_digits(browser)
        assert_no_full_number(browser, CALLER, LOCKED_CALLER)
    found = AuditEvent.objects.filter(caller="**********06").count()
    assert f"{found} results" in browser.find_element(By.ID, "changelist-search").text

    # Its CallSid leads to the call's trail: every row of that call, and only those.
    link = browser.find_element(By.CSS_SELECTOR, "td.field-call_link a")
    call_sid = link.text
    link.click()
    WebDriverWait(browser, 15).until(expected_conditions.url_contains(f"q={call_sid}"))
    sids = {c.text for c in browser.find_elements(By.CSS_SELECTOR, "td.field-call_link")}
    assert sids == {call_sid}
    trail = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    assert len(trail) == AuditEvent.objects.filter(call_sid=call_sid).count() > 1

    # Call sessions, found the same way.
    browser.get(f"{live_server.url}/admin/calls/callsession/")
    search(browser, SPELLINGS[1])
    rows = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    assert len(rows) == CallSession.objects.filter(caller=CALLER).count() == 4
    browser.save_screenshot(str(SCREENSHOTS / "call-sessions.png"))
    assert overflow(browser) == {"table": 0, "page": 0}
    assert_no_full_number(browser, CALLER, LOCKED_CALLER)

    # The lockouts page, in the admin's frame, lists the lock with the caller masked.
    browser.get(f"{live_server.url}/admin/accounts/lockout/")
    assert browser.find_element(By.ID, "user-tools")
    listed = browser.find_element(By.ID, "result_list").text
    assert all(who in listed for who in locked)
    assert_no_planted_digits(browser)
    assert_no_full_number(browser, CALLER, LOCKED_CALLER)
