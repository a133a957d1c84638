"""gunicorn runs no system checks: the WSGI module runs them, and a misconfigured server stops.
A sound one serves, and the audit log records its start, reload and stop."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from contextlib import closing
from pathlib import Path

from django.conf import settings

from conftest import manage_with, server_env

GUNICORN = Path(sys.executable).parent / "gunicorn"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def gunicorn(env: dict[str, str], port: int) -> subprocess.Popen[str]:
    """The project's gunicorn.conf.py, one worker."""
    bind = f"127.0.0.1:{port}"
    return subprocess.Popen(  # noqa: S603  (fixed arguments)
        [str(GUNICORN), "-c", "gunicorn.conf.py", "-w", "1", "-b", bind, "securegather.wsgi"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def exits(server: subprocess.Popen[str]) -> str:
    """Its output once it has exited by itself (killed if it has not in 60 s)."""
    try:
        return server.communicate(timeout=60)[0]
    except subprocess.TimeoutExpired:
        server.kill()
        return server.communicate()[0]


def test_a_broken_keyring_stops_the_server_with_its_error_id(tmp_path):
    server = gunicorn(server_env(tmp_path, SECUREGATHER_KEYS="k1:nothex"), free_port())
    output = exits(server)
    assert server.returncode > 0  # it exited by itself, with an error
    assert "(securegather.E003) The keyring is unusable: key 'k1' is not hexadecimal." in output
    assert "Worker failed to boot" in output


def test_no_auth_token_stops_the_server_too(tmp_path):
    server = gunicorn(server_env(tmp_path, TWILIO_AUTH_TOKEN=""), free_port())
    output = exits(server)
    assert server.returncode > 0  # it exited by itself, with an error
    assert "(securegather.E010) TWILIO_AUTH_TOKEN is not set" in output


def serves(server: subprocess.Popen[str], port: int) -> None:
    """Wait (up to 60 s) until the server answers /healthz."""
    deadline = time.monotonic() + 60
    while True:
        assert server.poll() is None, server.communicate()[0]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                body = json.loads(r.read())
                assert (r.status, body) == (200, {"status": "ok", "guessing_suspected": False})
                return
        except OSError:
            assert time.monotonic() < deadline, "gunicorn did not answer in 60 s"
            time.sleep(0.2)


def service_rows(database: Path) -> list[tuple[str, int]]:
    """The server's rows: its start, reload and stop (migrate's row comes before them)."""
    with closing(sqlite3.connect(database)) as db:
        query = (
            "SELECT event, detail FROM audit_auditevent WHERE event LIKE 'service_%' ORDER BY id"
        )
        return [(event, json.loads(detail)["pid"]) for event, detail in db.execute(query)]


def test_a_sound_configuration_serves_and_its_start_reload_and_stop_are_recorded(tmp_path):
    env = server_env(tmp_path)
    migrate = manage_with(env, "migrate", "--noinput", "--verbosity", "0", timeout=120)
    assert migrate.returncode == 0, migrate.stderr
    port = free_port()
    server = gunicorn(env, port)
    try:
        serves(server, port)
        server.send_signal(signal.SIGHUP)  # reload: gunicorn records it before new workers start
        deadline = time.monotonic() + 60
        while len(service_rows(tmp_path / "db.sqlite3")) < 2:
            assert time.monotonic() < deadline, "no service_reloaded row in 60 s"
            time.sleep(0.2)
        serves(server, port)
    finally:
        server.terminate()
        output = exits(server)
    assert server.returncode == 0, output
    assert "did not record" not in output
    assert service_rows(tmp_path / "db.sqlite3") == [
        ("service_started", server.pid),
        ("service_reloaded", server.pid),
        ("service_stopped", server.pid),
    ]
