"""The service behind the shipped nginx configuration (deploy/nginx/securegather.conf), run from a
temporary prefix with a self-signed certificate in front of a real gunicorn: real client
addresses for the admin's lockout, slow clients held off, and a signed call played through it.

nginx is Debian's package, which .ci/run installs: without it these tests skip, except under
CI=true, where its absence fails them."""

from __future__ import annotations

import base64
import http.client
import os
import re
import secrets
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from django_otp.oath import TOTP
from twilio.request_validator import RequestValidator

from conftest import ACCOUNT_SID, CALLER, PASSWORD, manage_with, server_env
from deploy.proxy import NGINX, Proxy, free_port, nginx, nginx_missing
from deploy.units import exec_start

AUTH_TOKEN = "token"  # conftest.server_env's
BEHIND_NGINX = {
    "SECUREGATHER_TRUSTED_PROXY_HEADER": "X-Forwarded-For",
    "SECUREGATHER_TRUSTED_PROXY_COUNT": "1",
    "DJANGO_SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto",
    "DJANGO_ALLOWED_HOSTS": "localhost",
}
# The issue this guards against: three half-sent requests held every sync worker until gunicorn's
# 10 s timeout. Through nginx, twenty of them must leave a webhook's answer well inside that.
HALF_SENT = 20
ANSWERED_WITHIN = 1.0


@pytest.fixture(autouse=True)
def _nginx_installed() -> None:
    if reason := nginx_missing():
        # .ci/run installs nginx: in CI its absence is a failure, never a skip.
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


@dataclass
class Site:
    proxy: Proxy
    database: Path
    env: dict[str, str]

    def connection(self, source: str = "127.0.0.1") -> http.client.HTTPSConnection:
        """A client at ``source`` (any address of 127.0.0.0/8 is this machine's)."""
        context = ssl.create_default_context(cafile=str(self.proxy.certificate))
        return http.client.HTTPSConnection(
            "localhost",
            self.proxy.https_port,
            context=context,
            source_address=(source, 0),
            timeout=15,
        )

    def rows(self, event: str) -> list[tuple[str, str]]:
        """(actor, origin_ip) of the audit rows of ``event``, oldest first."""
        with closing(sqlite3.connect(self.database)) as db:
            query = "SELECT actor, origin_ip FROM audit_auditevent WHERE event = ? ORDER BY id"
            return list(db.execute(query, [event]))


def prepared(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """A host's steps before it serves: its database migrated with the demo account, and the
    admin's static files gathered (into the project's staticfiles/, as on a host)."""
    env = server_env(tmp_path, **overrides)
    for command in (["migrate", "--noinput"], ["seed_demo"], ["collectstatic", "--noinput"]):
        done = manage_with(env, *command, "--verbosity", "0", timeout=120)
        assert done.returncode == 0, done.stderr
    return env


@contextmanager
def gunicorn(env: dict[str, str], port: int, log_path: Path) -> Iterator[None]:
    """What securegather.service starts (deploy/systemd), with two workers, serving on
    127.0.0.1:``port``."""
    argv, unit_env, directory = exec_start("securegather.service", settings.BASE_DIR)
    argv[0] = str(Path(sys.executable).parent / Path(argv[0]).name)  # this virtualenv's
    log = log_path.open("w")
    server = subprocess.Popen(  # noqa: S603  (the unit's command)
        argv,
        cwd=directory,
        env=unit_env | env | {"GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "2"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, log_path.read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "gunicorn did not listen in 60 s"
                time.sleep(0.1)
        yield
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()


@contextmanager
def site(tmp_path: Path, **overrides: str) -> Iterator[Site]:
    """nginx with the shipped configuration in front of gunicorn, on a migrated database with
    the demo account."""
    upstream = free_port()
    with nginx(upstream) as proxy:
        env = prepared(tmp_path, SECUREGATHER_PUBLIC_URL=proxy.origin, **overrides)
        with gunicorn(env, upstream, tmp_path / "gunicorn.log"):
            yield Site(proxy, tmp_path / "db.sqlite3", env)


# --- The admin's sign-in: the stranger's address is locked, not the staff member's.

LOGIN = "/admin/login/?next=/admin/"


class Browser:
    """One client of the admin, at one address, keeping its cookies."""

    def __init__(self, site: Site, source: str) -> None:
        self.site, self.source, self.cookies = site, source, {}

    def request(self, method: str, path: str, body: str = "", **headers: str) -> tuple[int, str]:
        connection = self.site.connection(self.source)
        cookie = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        headers = {"Cookie": cookie, **headers} if cookie else headers
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name] = rest.split(";", 1)[0]
        text = response.read().decode()
        connection.close()
        return response.status, text

    def sign_in(self, username: str, password: str, token: str = "", **headers: str) -> int:
        status, page = self.request("GET", LOGIN)
        assert status == 200, page[:300]
        (csrf,) = re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        form = {"csrfmiddlewaretoken": csrf, "username": username, "password": password}
        form |= {"otp_token": token, "next": "/admin/"}
        status, page = self.request(
            "POST",
            LOGIN,
            urllib.parse.urlencode(form),
            **{"Content-Type": "application/x-www-form-urlencoded"},
            # What a browser on the default port sends: nginx passes the host without the port.
            Origin="https://localhost",
            **headers,
        )
        return status


def staff_member(env: dict[str, str], username: str) -> TOTP:
    """A superuser made with manage.py, as an operator does, and their authenticator."""
    made = manage_with(
        env | {"DJANGO_SUPERUSER_PASSWORD": PASSWORD},
        *["createsuperuser", "--noinput", "--username", username, "--email", "o@example.com"],
    )
    assert made.returncode == 0, made.stderr
    enrolled = manage_with(env, "enrol_totp", username)
    assert enrolled.returncode == 0, enrolled.stderr
    (secret,) = re.findall(r"secret=([A-Z2-7]+)", enrolled.stdout)
    return TOTP(base64.b32decode(secret + "=" * (-len(secret) % 8)), step=30, digits=6)


def test_a_strangers_failures_lock_their_address_and_the_staff_member_signs_in(tmp_path):
    with site(tmp_path, **BEHIND_NGINX) as served:
        authenticator = staff_member(served.env, "olive")
        stranger = Browser(served, "127.0.0.2")
        # A new username each time, and a new address forged in X-Forwarded-For: the tenth
        # failure locks the address nginx saw (AXES_FAILURE_LIMIT), and so does the eleventh.
        statuses = [
            stranger.sign_in(f"guess{n}", "wrong password", **{"X-Forwarded-For": f"203.0.113.{n}"})
            for n in range(11)
        ]
        assert statuses == [200] * 9 + [429, 429]
        olive = Browser(served, "127.0.0.3")
        assert olive.sign_in("olive", PASSWORD, f"{authenticator.token():06d}") == 302
        assert olive.request("GET", "/admin/")[0] == 200
        failed = served.rows("staff_login_failed")
        locked = served.rows("staff_locked_out")
        signed_in = served.rows("staff_login")
    assert len(failed) == 11 and {origin for _, origin in failed} == {"127.0.0.2"}
    assert {origin for _, origin in locked} == {"127.0.0.2"}
    assert signed_in == [("olive", "127.0.0.3")]


def test_without_the_proxy_declared_the_strangers_failures_lock_out_every_staff_member(tmp_path):
    # What the declaration prevents: every request's peer is nginx, one address for everyone.
    undeclared = {k: v for k, v in BEHIND_NGINX.items() if "TRUSTED_PROXY" not in k}
    with site(tmp_path, **undeclared) as served:
        authenticator = staff_member(served.env, "olive")
        stranger = Browser(served, "127.0.0.2")
        for n in range(10):
            stranger.sign_in(f"guess{n}", "wrong password")
        olive = Browser(served, "127.0.0.3")
        assert olive.sign_in("olive", PASSWORD, f"{authenticator.token():06d}") == 429
        assert {origin for _, origin in served.rows("staff_login_failed")} == {"127.0.0.1"}


def test_a_quote_the_stranger_writes_into_x_forwarded_for_names_no_other_address(tmp_path):
    # nginx forwards 'X-Forwarded-For: 10.0.0.5, ", 127.0.0.2': the service reads 127.0.0.2,
    # never 10.0.0.5 nor nginx's own 127.0.0.1, which the metrics allow-list below holds.
    metrics_listed = {"SECUREGATHER_METRICS_ADDRESSES": "127.0.0.1,10.0.0.5"}
    with site(tmp_path, **BEHIND_NGINX, **metrics_listed) as served:
        stranger = Browser(served, "127.0.0.2")
        for forged in ('10.0.0.5, "', '"'):
            assert stranger.sign_in("guess", "wrong password", **{"X-Forwarded-For": forged}) == 200
        metrics = stranger.request("GET", "/metrics", **{"X-Forwarded-For": '"'})
        failed = served.rows("staff_login_failed")
    assert [origin for _, origin in failed] == ["127.0.0.2", "127.0.0.2"]
    # nginx's own refusal: the shipped configuration lets no address through until one is listed.
    status, page = metrics
    assert (status, "<center>nginx</center>" in page) == (403, True)


# --- Slow clients: nginx holds half-sent requests, gunicorn's workers never see them.


# Half a request's headers; or all of them and half its body, which nginx would pass on as it
# came were it not told to buffer the request (proxy_request_buffering).
HALF_REQUESTS = [
    b"POST /voice/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: applic",
    b"POST /voice/ HTTP/1.1\r\nHost: localhost\r\nContent-Length: 400\r\n"
    b"Content-Type: application/x-www-form-urlencoded\r\n\r\nCallSid=CA",
]


def half_sent(proxy: Proxy, request: bytes) -> socket.socket:
    """A TLS connection that has sent part of a request, and stops."""
    context = ssl.create_default_context(cafile=str(proxy.certificate))
    raw = socket.create_connection(("127.0.0.1", proxy.https_port), timeout=15)
    tls = context.wrap_socket(raw, server_hostname="localhost")
    tls.sendall(request)
    return tls


def webhook(served: Site) -> tuple[int, str, float]:
    """A signed "a call comes in", as Twilio posts it: its status, body and seconds taken."""
    params = {
        "CallSid": "CA" + secrets.token_hex(16),
        "AccountSid": ACCOUNT_SID,
        "From": CALLER,
        "To": "+15005550001",
        "CallStatus": "ringing",
    }
    url = served.proxy.origin + "/voice/"
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, params)
    connection = served.connection()
    started = time.monotonic()
    connection.request(
        "POST",
        "/voice/",
        body=urllib.parse.urlencode(params),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
        },
    )
    response = connection.getresponse()
    body = response.read().decode()
    taken = time.monotonic() - started
    connection.close()
    return response.status, body, taken


def test_twenty_half_sent_requests_leave_a_signed_webhook_answered_within_a_second(tmp_path):
    with site(tmp_path, **BEHIND_NGINX) as served, ExitStack() as held:
        status, body, _ = webhook(served)  # each worker's first request opens its database
        assert (status, "<Gather" in body) == (200, True)
        slow = [
            held.enter_context(closing(half_sent(served.proxy, HALF_REQUESTS[n % 2])))
            for n in range(HALF_SENT)
        ]
        # More webhooks than gunicorn has workers: with the workers held, one would wait 10 s.
        answers = [webhook(served) for _ in range(4)]
        for sock in slow:  # still open: nginx is holding them, not answering them
            sock.setblocking(False)
            with pytest.raises(ssl.SSLWantReadError):
                sock.recv(1)
    assert [(status, "<Gather" in body) for status, body, _ in answers] == [(200, True)] * 4
    assert max(taken for _, _, taken in answers) < ANSWERED_WITHIN


def test_a_body_over_the_size_limit_is_refused_by_nginx(tmp_path):
    with site(tmp_path, **BEHIND_NGINX) as served:
        status, _, _ = webhook(served)
        connection = served.connection()
        connection.request("POST", "/voice/", body="x" * (300 * 1024))
        too_large = connection.getresponse().status
    assert (status, too_large) == (200, 413)


# --- The smoke test of docs/deployment.md: a whole signed call through nginx.


def test_simulate_call_plays_a_signed_call_through_nginx(tmp_path):
    with site(tmp_path, **BEHIND_NGINX) as served:
        # simulate_call trusts the system's certificates: here, the self-signed one alone.
        env = served.env | {"SSL_CERT_FILE": str(served.proxy.certificate)}
        played = manage_with(
            env,
            *["simulate_call", "--url", served.proxy.origin, "--card", "1234", "--pin", "4321"],
        )
        calls = served.rows("call_started")
        access_log = served.proxy.access_log.read_text()
    assert played.returncode == 0, played.stderr
    assert "Your account number is AC12345678 and your balance is 12.55" in played.stdout
    assert [origin for _, origin in calls] == ["127.0.0.1"]
    assert '"POST /voice/pin/" 200' in access_log
    for digits in ("1234", "4321"):
        assert digits not in access_log


def test_the_shipped_configuration_passes_nginx_own_test(tmp_path):
    with nginx(free_port()) as proxy:
        prefix = proxy.error_log.parent
        tested = subprocess.run(  # noqa: S603  (fixed arguments)
            [NGINX, "-t", "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert tested.returncode == 0, tested.stderr
    assert "test is successful" in tested.stderr
    assert "[warn]" not in tested.stderr
