"""Fixtures shared by every app's tests: signed Twilio requests, a call, and a plaintext scanner."""

from __future__ import annotations

import io
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from django.http import HttpResponse
from django.test import Client
from hypothesis import settings as hypothesis_settings
from twilio.request_validator import RequestValidator

from accounts.models import Account

# CI runs the "ci" profile (HYPOTHESIS_PROFILE=ci in .ci/run): the full count of examples.
hypothesis_settings.register_profile("ci", max_examples=2000, deadline=None, print_blob=True)
hypothesis_settings.register_profile("dev", max_examples=200, deadline=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

CALL_SID = "CA" + "ab" * 16
CALLER = "+15005550006"
# Where tests that move the clock start it.
START = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
ACCOUNT_SID = "AC" + "cd" * 16


class TwilioClient:
    """Posts as Twilio does: form-encoded (application/x-www-form-urlencoded, not the test
    client's multipart) and signed. Enforces CSRF: webhooks must not need it."""

    def __init__(self) -> None:
        self.client = Client(enforce_csrf_checks=True)
        self.responses: list[HttpResponse] = []

    def post(
        self,
        path: str,
        params: dict[str, str],
        *,
        signed_url: str | None = None,
        signature: str | None = None,
        **extra: str,
    ) -> HttpResponse:
        if signature is None:
            url = signed_url or f"http://testserver{path}"
            signature = RequestValidator(settings.TWILIO_AUTH_TOKEN).compute_signature(url, params)
        response = self.client.post(
            path,
            urlencode(params),
            content_type="application/x-www-form-urlencoded",
            HTTP_X_TWILIO_SIGNATURE=signature,
            **extra,
        )
        self.responses.append(response)
        return response


class GoneMidBody(io.RawIOBase):
    """A request body whose sender hung up: reading it fails."""

    def read(self, size: int = -1) -> bytes:
        raise OSError("connection reset")


@dataclass
class FakeCall:
    """One call's parameters, posted step by step."""

    twilio: TwilioClient
    call_sid: str = CALL_SID
    caller: str = CALLER
    params: dict[str, str] = field(default_factory=dict)

    def base(self) -> dict[str, str]:
        return {
            "CallSid": self.call_sid,
            "AccountSid": ACCOUNT_SID,
            "From": self.caller,
            "To": "+15005550001",
            "CallStatus": "in-progress",
            **self.params,
        }

    def start(self) -> HttpResponse:
        return self.twilio.post("/voice/", self.base())

    def card(self, digits: str | None) -> HttpResponse:
        return self.twilio.post("/voice/card/", self._with_digits(digits))

    def pin(self, digits: str | None) -> HttpResponse:
        return self.twilio.post("/voice/pin/", self._with_digits(digits))

    def status(self, call_status: str = "completed") -> HttpResponse:
        return self.twilio.post("/voice/status/", {**self.base(), "CallStatus": call_status})

    def _with_digits(self, digits: str | None) -> dict[str, str]:
        return self.base() if digits is None else {**self.base(), "Digits": digits}


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("postgres") and connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (row locks, server behaviour); CI's PostgreSQL leg runs it")


@pytest.fixture
def twilio() -> TwilioClient:
    return TwilioClient()


@pytest.fixture
def call(twilio: TwilioClient, db: None) -> FakeCall:
    return FakeCall(twilio)


@pytest.fixture
def clock() -> Iterator[time_machine.Coordinates]:
    """The clock stopped at START; ``clock.shift(timedelta(...))`` moves it."""
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def demo_account(db: None):
    from accounts.management.commands.seed_demo import seed_demo
    from accounts.models import Account

    seed_demo()
    return Account.objects.get(number="AC12345678")


def standalone(digits: str) -> re.Pattern[str]:
    """The digits as a value of their own, not inside a hex digest, token or longer number."""
    return re.compile(rf"(?<![0-9A-Za-z]){re.escape(digits)}(?![0-9A-Za-z])")


def database_text() -> str:
    """Every value of every table, read with raw SQL so no field can mask what a column holds."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            chunks.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(chunks)


class PlaintextScanner:
    def __init__(self, caplog: pytest.LogCaptureFixture, twilio: TwilioClient) -> None:
        self.caplog, self.twilio = caplog, twilio

    def places(self, *digits: str) -> list[str]:
        """Where any of ``digits`` stands: database, log lines, responses (bodies and headers)."""
        found = []
        texts = {
            "database": database_text(),
            "logs": "\n".join(self.caplog.handler.format(record) for record in self.caplog.records),
            "responses": "\n".join(
                r.content.decode(errors="replace") + repr(r.headers.items())
                for r in self.twilio.responses
            ),
        }
        for value in digits:
            found += [
                f"{value} in {where}"
                for where, text in texts.items()
                if standalone(value).search(text)
            ]
        return found

    def assert_absent(self, *digits: str) -> None:
        assert self.places(*digits) == []


@pytest.fixture
def plaintext(
    caplog: pytest.LogCaptureFixture, twilio: TwilioClient, db: None
) -> Iterator[PlaintextScanner]:
    caplog.set_level(logging.DEBUG)
    yield PlaintextScanner(caplog, twilio)


def _is_transactional(request: pytest.FixtureRequest) -> bool:
    marker = request.node.get_closest_marker("django_db")
    return bool(
        {"transactional_db", "live_server"} & set(request.fixturenames)
        or (marker and (marker.kwargs.get("transaction") or marker.args[:1] == (True,)))
    )


@pytest.fixture(autouse=True)
def _empty_audit_log_after_transactional_tests(request: pytest.FixtureRequest) -> Iterator[None]:
    """The audit table refuses DELETE (audit.appendonly), and a transactional test ends
    with a flush that deletes every row. So, after such a test only, lift the triggers, empty the
    audit table, and put them back before the flush: every test runs under the triggers."""
    yield
    if not _is_transactional(request):
        return
    from audit import appendonly

    appendonly.drop_triggers(connection)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {appendonly.TABLE}")  # noqa: S608
    appendonly.create_triggers(connection)


@pytest.fixture
def superuser(db: None):
    from securegather.tests.staff import make_staff

    return make_staff("root", superuser=True)


@pytest.fixture
def ops_user(db: None):
    from securegather.tests.staff import make_staff

    return make_staff("olive", ops=True)


@pytest.fixture
def admin_client(superuser) -> Client:
    """The superuser, signed in with password and TOTP (replaces pytest-django's fixture)."""
    from securegather.tests.staff import verified_client

    return verified_client(superuser)


@pytest.fixture
def ops_client(ops_user) -> Client:
    from securegather.tests.staff import verified_client

    return verified_client(ops_user)


# Calls made with known digits, for tests that look for those digits where they must not be.
CARD, PIN = "7391", "2846"  # the account's, typed on the verified call
WRONG_PIN = "5082"  # typed on the not-found call
STRAY_CARD = "6619"  # typed on a call that hung up before its PIN: sealed, then wiped
OPEN_CARD = "4470"  # typed on a call still waiting for its PIN: sealed on the session
PLANTED = (CARD, PIN, WRONG_PIN, STRAY_CARD, OPEN_CARD)


@pytest.fixture
def calls_made(call, superuser):
    account = Account(number="AC55500011")
    account.set_credentials(CARD, PIN)
    account.save()
    for n, (card, pin, hang_up) in enumerate(
        [
            (CARD, PIN, True),
            (CARD, WRONG_PIN, True),
            (STRAY_CARD, None, True),
            (OPEN_CARD, None, False),
        ]
    ):
        call.call_sid = CALL_SID[:-2] + f"{n:02d}"
        call.start()
        call.card(card)
        call.card("12")  # an invalid entry at the PIN prompt, audited as out of order or invalid
        if pin:
            call.pin(pin)
        if hang_up:
            call.status()
    for staff in ("pat", "quinn"):
        User.objects.create_user(staff, password="another long password")
