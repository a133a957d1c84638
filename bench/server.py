"""Start and stop a gunicorn for benchmarks, on a fresh database of its own.

Every command line here is built from constants and integers, never from outside input.
"""

from __future__ import annotations

import os
import platform
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
AUTH_TOKEN = secrets.token_hex(16)
PG_ADMIN = "postgres://postgres@127.0.0.1:5432/postgres"


def machine() -> str:
    """The cores, the CPU model and the Python a benchmark ran on, for its printout."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}; Python {platform.python_version()}"


def fresh_database(kind: str, name: str) -> str:
    """A DATABASE_URL for an empty database: a temp SQLite file or a recreated PostgreSQL db."""
    if kind == "sqlite":
        return f"sqlite:///{tempfile.mkdtemp(prefix='sg-bench-')}/bench.sqlite3"
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgres://postgres@127.0.0.1:5432/{name}"


def bench_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SECUREGATHER_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="bench.settings",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(40),
        DJANGO_LOG_LEVEL="WARNING",
        DATABASE_URL=database_url,
        SECUREGATHER_KEYS=f"bench:{secrets.token_hex(32)}",
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_ACCOUNT_SID="",
        PYTHONPATH=str(ROOT),
        # The load generator speaks plain http: no https redirect, and no developer .env.
        DJANGO_SECURE_SSL_REDIRECT="false",
        DJANGO_ENV_FILE=os.devnull,
        **extra,
    )
    return env


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run(  # noqa: S603
        [PY, "manage.py", *args], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL
    )


def _wait_for_port(port: int, process: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("gunicorn exited at start-up")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not listen on {port} within {seconds} s")


def _refuse_busy_port(port: int) -> None:
    """Stop if something listens on ``port`` already: the run would measure that server (another
    benchmark's, left running) instead of its own, and count its refusals as errors."""
    with socket.socket() as probe:
        # As gunicorn binds: a previous run's connections in TIME_WAIT do not count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise SystemExit(f"port {port} is in use (another server?): pass --port") from None


@contextmanager
def gunicorn(env: dict[str, str], port: int, workers: int) -> Iterator[str]:
    """A running gunicorn with the project's config; its access log is off for the run."""
    _refuse_busy_port(port)
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(  # noqa: S603
            [
                PY,
                "-m",
                "gunicorn",
                "-c",
                "gunicorn.conf.py",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                "--access-logfile",
                "/dev/null",
                "bench.wsgi",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            # A file, not a pipe nobody reads: a chatty server would block on a full pipe.
            stderr=log,
        )
        try:
            try:
                _wait_for_port(port, process)
            except RuntimeError:
                log.seek(0)
                sys.stderr.write(log.read()[-2000:])
                raise
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(timeout=30)
