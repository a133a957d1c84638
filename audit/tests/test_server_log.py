"""PostgreSQL's own log keeps no caller's number: server-side binding sends statements with
placeholders, terse verbosity leaves out the DETAIL that quotes a failed row, and audit.W002 warns
when the server runs without it. Against a PostgreSQL of the test's own, started with initdb."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import IntegrityError
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.utils import ConnectionHandler

from audit.database_checks import server_log_warnings
from conftest import CALLER

BINARIES = [Path("/usr/lib/postgresql/15/bin"), *sorted(Path("/usr/lib/postgresql").glob("*/bin"))]


def _bin_dir() -> Path:
    for directory in BINARIES:
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).parent
    reason = "PostgreSQL's initdb and pg_ctl are not installed"
    # CI installs PostgreSQL: there its absence is a failure, never a skip.
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def _as_owner(command: list[str]) -> list[str]:
    """initdb refuses to run as root: run it, and the server, as postgres then."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


def _run(command: list[str], check: bool = True) -> None:
    # The PostgreSQL binaries found above, with the test's own arguments.
    subprocess.run(_as_owner(command), check=check, capture_output=True)  # noqa: S603


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    def __init__(self, root: Path, port: int) -> None:
        self.root, self.port = root, port
        self.log = root / "server.log"

    def connection(self, **options: object) -> BaseDatabaseWrapper:
        handler = ConnectionHandler(
            {
                "default": {
                    "ENGINE": "django.db.backends.postgresql",
                    "NAME": "postgres",
                    "USER": "postgres",
                    "HOST": str(self.root),
                    "PORT": str(self.port),
                    "OPTIONS": {"server_side_binding": True, **options},
                }
            }
        )
        connection: BaseDatabaseWrapper = handler["default"]
        return connection


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    bin_dir = _bin_dir()
    # Not pytest's tmp_path: its directories are root's alone, and the server runs as postgres.
    root = Path(tempfile.mkdtemp(prefix="sg-serverlog-"))
    try:
        if os.geteuid() == 0:
            shutil.chown(root, "postgres", "postgres")
        data, port = root / "data", _free_port()
        initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"]
        _run([*initdb, "--no-sync", "-E", "UTF8"])
        # The settings docs/deployment.md gives; on a Unix socket only, in the directory.
        options = (
            f"-p {port} -k {root} -c listen_addresses='' -c log_error_verbosity=terse "
            "-c log_statement=none -c log_min_error_statement=error -c fsync=off"
        )
        pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(data)]
        _run([*pg_ctl, "-l", str(root / "server.log"), "-o", options, "-w", "start"])
        try:
            yield Server(root, port)
        finally:
            _run([*pg_ctl, "-m", "immediate", "stop"], check=False)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def connection(server: Server, django_db_blocker) -> Iterator[BaseDatabaseWrapper]:
    with django_db_blocker.unblock():
        connection = server.connection()
        try:
            with connection.cursor() as cursor:
                cursor.execute("DROP TABLE IF EXISTS callers")
                cursor.execute("CREATE TABLE callers (caller text UNIQUE)")
            yield connection
        finally:
            connection.close()


def _insert_twice(connection: BaseDatabaseWrapper) -> None:
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO callers (caller) VALUES (%s)", [CALLER])
        with pytest.raises(IntegrityError):
            cursor.execute("INSERT INTO callers (caller) VALUES (%s)", [CALLER])


def test_a_failed_statement_leaves_no_value_in_the_servers_log(server, connection):
    _insert_twice(connection)
    log = server.log.read_text()
    # The error and the statement are logged, the statement with its placeholder only.
    assert "duplicate key value violates unique constraint" in log
    assert "INSERT INTO callers (caller) VALUES ($1)" in log
    assert CALLER not in log
    assert CALLER[-10:] not in log


def test_terse_verbosity_keeps_parameters_out_of_logged_statements_too(server, connection):
    with connection.cursor() as cursor:
        cursor.execute("SET log_statement = 'all'")  # a superuser's, for this session
        cursor.execute("INSERT INTO callers (caller) VALUES (%s)", ["+15005550123"])
        cursor.execute("SET log_statement = 'none'")
    log = server.log.read_text()
    assert "execute <unnamed>: INSERT INTO callers (caller) VALUES ($1)" in log
    assert "+15005550123" not in log


def test_the_default_verbosity_would_print_the_value_and_is_warned_of(server, connection):
    assert server_log_warnings(connection, "serverlog") == []
    with connection.cursor() as cursor:
        cursor.execute("SET log_error_verbosity = 'default'")  # a superuser's, for this session
    [warning] = server_log_warnings(connection, "serverlog")
    assert warning.id == "audit.W002"
    assert "log_error_verbosity = default" in warning.msg
    _insert_twice(connection)
    # What terse leaves out: "DETAIL:  Key (caller)=(+15005550006) already exists."
    assert f"Key (caller)=({CALLER}) already exists" in server.log.read_text()
