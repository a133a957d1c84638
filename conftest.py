"""Fixtures shared by every app's tests: signed Twilio requests, a call, and a plaintext scanner."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import time_machine
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import connection
from django.http import HttpResponse
from django.test import Client
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from hypothesis import settings as hypothesis_settings
from twilio.request_validator import RequestValidator

from accounts.models import Account
from audit import appendonly
from audit.models import AuditEvent
from staff.roles import ensure_ops_group

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
def _empty_cache() -> Iterator[None]:
    """Each test starts with the default cache (local memory) empty: what one test's settings
    made the dashboard cache (its system checks) is not another's."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _empty_audit_log_after_transactional_tests(request: pytest.FixtureRequest) -> Iterator[None]:
    """The audit table refuses DELETE (audit.appendonly), and a transactional test ends
    with a flush that deletes every row. So, after such a test only, lift the triggers, empty the
    audit table, and put them back before the flush: every test runs under the triggers."""
    yield
    if not _is_transactional(request):
        return
    appendonly.drop_triggers(connection)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {appendonly.TABLE}")  # noqa: S608
    appendonly.create_triggers(connection)


@pytest.fixture
def superuser(db: None):
    return make_staff("root", superuser=True)


@pytest.fixture
def ops_user(db: None):
    return make_staff("olive", ops=True)


@pytest.fixture
def admin_client(superuser) -> Client:
    """The superuser, signed in with password and TOTP (replaces pytest-django's fixture)."""
    return verified_client(superuser)


@pytest.fixture
def ops_client(ops_user) -> Client:
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


# --- Reading TwiML answers.


def parse(response) -> ET.Element:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/xml"
    return ET.fromstring(response.content)


def spoken(response) -> str:
    return " ".join(say.text or "" for say in parse(response).iter("Say"))


def gather(response) -> ET.Element | None:
    return parse(response).find("Gather")


def hangs_up(response) -> bool:
    return parse(response).find("Hangup") is not None


# --- Staff users: made with a TOTP device, and clients signed in with both factors.

PASSWORD = "correct horse battery staple"


def make_staff(username: str, *, superuser: bool = False, ops: bool = False) -> User:
    if superuser:
        user = User.objects.create_superuser(username, f"{username}@example.com", PASSWORD)
    else:
        user = User.objects.create_user(username, f"{username}@example.com", PASSWORD)
        user.is_staff = True
        user.save()
    if ops:
        user.groups.add(ensure_ops_group())
    TOTPDevice.objects.create(user=user, name="authenticator", confirmed=True)
    return user


def totp_now(user: User) -> str:
    device = TOTPDevice.objects.get(user=user)
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


def verified_client(user: User) -> Client:
    """A client past both factors, as after a real sign-in."""
    client = Client()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = TOTPDevice.objects.get(user=user).persistent_id
    session.save()
    return client


# --- Every page the admin serves for the rows in the database: for tests that sweep them all.

# Change pages per model: enough to cover every kind of row the flows write.
ROWS_PER_MODEL = 25


def admin_urls() -> Iterator[str]:
    yield reverse("admin:index")
    app_labels = sorted({model._meta.app_label for model in admin.site._registry})
    for app_label in app_labels:
        yield reverse("admin:app_list", args=[app_label])
    for model in admin.site._registry:
        opts = model._meta
        name = f"admin:{opts.app_label}_{opts.model_name}"
        yield reverse(f"{name}_changelist")
        yield reverse(f"{name}_add")
        for pk in model._default_manager.values_list("pk", flat=True)[:ROWS_PER_MODEL]:
            for view in ("change", "history", "delete"):
                yield reverse(f"{name}_{view}", args=[pk])


def object_urls(view: str) -> Iterator[str]:
    for model in admin.site._registry:
        opts = model._meta
        for pk in model._default_manager.values_list("pk", flat=True)[:ROWS_PER_MODEL]:
            yield reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=[pk])


# --- Tampering with the audit log the way someone with database access would.


@contextmanager
def triggers_lifted() -> Iterator[None]:
    """Drop the append-only triggers (as a database owner could), then put them back."""
    appendonly.drop_triggers(connection)
    try:
        yield
    finally:
        appendonly.create_triggers(connection)


def raw(sql: str, params: list[object] | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


TABLE = AuditEvent._meta.db_table


# --- A host's view of the project: its settings from the environment alone, and manage.py run as a
# process, as an engineer runs it.

SOUND_KEY = "k1:" + "ab" * 32


def server_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """securegather.settings from the environment alone: no .env, no DEBUG, a database unused."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SECUREGATHER_"))}
    env.update(
        DJANGO_ENV_FILE="/dev/null",
        DJANGO_SETTINGS_MODULE="securegather.settings",
        DJANGO_SECRET_KEY="x" * 50,
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        TWILIO_AUTH_TOKEN="token",
        SECUREGATHER_KEYS=SOUND_KEY,
    )
    env.update(overrides)
    return env


def manage(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """manage.py on an SQLite file of its own (no .env), as on a host."""
    return manage_with(server_env(tmp_path), *args, timeout=120)


def manage_with(
    env: dict[str, str], *args: str, timeout: int = 60
) -> subprocess.CompletedProcess[str]:
    """manage.py run as a process, in the project's directory, with ``env`` as its whole
    environment."""
    return subprocess.run(  # noqa: S603  (this interpreter and manage.py, with the test's words)
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# --- The tutorial's ciphertexts, made in Node.js exactly as its Function makes them.

LEGACY_KEY = "5e" * 32
ENCRYPT_JS = Path(__file__).parent / "legacy" / "tests" / "tutorial_encrypt.js"


def tutorial_encrypt(*plaintexts: str, key: str = LEGACY_KEY) -> list[str]:
    """Ciphertexts from Node's crypto, as the tutorial's AES.encrypt makes them.

    No skip when node is missing: this is the test that proves the tutorial's users can switch.
    """
    result = subprocess.run(  # noqa: S603
        ["node", str(ENCRYPT_JS), *plaintexts],  # noqa: S607
        env={"AES_SECRET": key, "PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return json.loads(result.stdout)


# --- A database nothing answers at.


def unreachable_database_url() -> str:
    """A PostgreSQL URL at a port of this machine that nothing listens on (a closed socket's)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"postgres://nobody@127.0.0.1:{port}/securegather"


# --- The user's backend: HPKE keys and the example backend (examples/backend/), over real HTTP.

# The example backend is a standalone program whose modules import each other by plain name, as
# they do when it runs: its tests find them the same way.
EXAMPLE_BACKEND = Path(__file__).parent / "examples" / "backend"
# The Node.js twin, whose packages `make test` installs (npm ci) before it runs the suite.
NODE_BACKEND = Path(__file__).parent / "examples" / "backend-node"


def require_node_backend() -> None:
    """Fail, naming the remedy, when the Node.js backend's packages are not installed."""
    if not (NODE_BACKEND / "node_modules" / ".installed").exists():
        pytest.fail("the Node.js backend's packages are missing: `make test` installs them")


sys.path.insert(0, str(EXAMPLE_BACKEND))
import launch  # noqa: E402  (examples/backend/launch.py, found through the path above)

BACKEND_SECRET = "test-backend-signing-secret-0123456789"


@dataclass
class BackendKeys:
    kid: str
    pem_file: Path
    public_entry: str
    kem: str = "X25519"

    @property
    def private_key(self) -> Any:
        from receiver import load_private_key  # examples/backend/receiver.py

        return load_private_key(self.pem_file.read_bytes())

    def settings(self) -> dict[str, Any]:
        """The settings that seal to this key with the HTTP resolver, no backend to ask."""
        return {
            "SECUREGATHER_RESOLVER": "accounts.resolvers.HttpResolver",
            "SECUREGATHER_BACKEND_PUBLIC_KEYS": self.public_entry,
            "SECUREGATHER_BACKEND_KEM": self.kem,
        }


def make_backend_keys(directory: Path, kid: str, kem: str = "X25519") -> BackendKeys:
    """A backend key pair of the suite, its private key in a file as backend_keypair writes it."""
    from keys import hpke

    private_file, public = hpke.new_keypair(kem)
    path = directory / f"backend-{kid}.pem"
    hpke.write_private_key(path, private_file)
    return BackendKeys(kid, path, f"{kid}:{public}", kem)


@pytest.fixture
def backend_keys(tmp_path: Path) -> BackendKeys:
    return make_backend_keys(tmp_path, "b1")


@dataclass
class ExampleBackend:
    url: str
    process: subprocess.Popen[str]
    keys: tuple[BackendKeys, ...]

    def settings(self, kem: str | None = None) -> dict[str, Any]:
        """The settings that point SecureGather's HTTP resolver at this backend, with the public
        keys of all its private ones; ``kem`` names the suite that seals (the first key's)."""
        return {
            **self.keys[0].settings(),
            "SECUREGATHER_BACKEND_URL": self.url,
            "SECUREGATHER_BACKEND_PUBLIC_KEYS": ",".join(key.public_entry for key in self.keys),
            "SECUREGATHER_BACKEND_KEM": kem or self.keys[0].kem,
            "SECUREGATHER_BACKEND_SECRET": BACKEND_SECRET,
        }


@contextmanager
def running_backend(*keys: BackendKeys, node: bool = False) -> Iterator[ExampleBackend]:
    """examples/backend/server.py, or with ``node`` examples/backend-node/server.mjs, with these
    keys, in a subprocess on a port the OS picks; this process's breaker closed before and after."""
    from accounts import backend_client

    if node:
        require_node_backend()
    process, url = launch.start([key.pem_file for key in keys], BACKEND_SECRET, node=node)
    backend_client.BREAKER.succeeded()
    try:
        yield ExampleBackend(url, process, keys)
    finally:
        process.terminate()
        process.wait(timeout=10)
        backend_client.BREAKER.succeeded()


@pytest.fixture
def example_backend(backend_keys: BackendKeys) -> Iterator[ExampleBackend]:
    with running_backend(backend_keys) as backend:
        yield backend


def signed_request(
    call_sid: str, timestamp: float | None = None, key: Any = None
) -> tuple[bytes, str, str]:
    """A request for the demo account's digits as SecureGather signs it: its body, timestamp
    and signature header. Sealed with ``key``, or with the key the settings seal with."""
    from accounts import backend_client
    from keys import hpke

    stamp = str(int(time.time() if timestamp is None else timestamp))
    card, pin = hpke.seal("1234", "card", call_sid, key), hpke.seal("4321", "pin", call_sid, key)
    body = backend_client.request_body(card, pin, "+15005550006", call_sid, stamp)
    return body, stamp, backend_client.sign(BACKEND_SECRET.encode(), stamp, body)


def post_to(
    backend: ExampleBackend, body: bytes, timestamp: str, signature: str
) -> tuple[int, Any]:
    """POST a request to an example backend: the status and the JSON answer, refusals too."""
    request = urllib.request.Request(  # noqa: S310 (the example backend's http:// URL)
        backend.url,
        data=body,
        headers={"X-SecureGather-Timestamp": timestamp, "X-SecureGather-Signature": signature},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
