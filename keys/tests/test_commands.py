"""Every command that needs the database says in one line when it cannot connect to it, or when
the database lacks migrations."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import OperationalError, connection

from conftest import manage
from keys.models import KeyRecord

REFUSED = (
    'connection failed: connection to server at "127.0.0.1", port 5433 failed: Connection '
    "refused\n\tIs the server running on that host and accepting TCP/IP connections?"
)
COMMANDS = [
    ("create_account", "AC87654321"),
    ("seed_demo",),
    ("unlock", "+15551234567"),
    ("purge_sessions",),
    ("enrol_totp", "ops"),
    ("keyring_status",),
    ("rotate_keys", "--dry-run"),
    ("verify_audit_log",),
    ("simulate_call", "--card", "0", "--pin", "0"),  # in-process: on this host's database
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: command[0])
def test_a_database_it_cannot_reach_is_one_line_that_says_what_to_check(monkeypatch, command):
    def refused() -> None:
        raise OperationalError(REFUSED)

    monkeypatch.setattr(connection, "ensure_connection", refused)
    with pytest.raises(CommandError) as failed:
        call_command(*command)
    assert str(failed.value) == (
        'Cannot connect to the database: connection failed: connection to server at "127.0.0.1",'
        " port 5433 failed: Connection refused. Check that it is running and that DATABASE_URL "
        "names it."
    )


def test_against_a_server_simulate_call_needs_no_database_here(monkeypatch):
    def refused() -> None:
        raise OperationalError(REFUSED)

    monkeypatch.setattr(connection, "ensure_connection", refused)
    url = "http://127.0.0.1:9"
    with pytest.raises(CommandError, match=r"Cannot reach http://127\.0\.0\.1:9/voice/"):
        call_command("simulate_call", "--card", "0", "--pin", "0", "--url", url)


@pytest.mark.parametrize(
    "command",
    [
        ("purge_sessions",),
        ("keyring_status",),
        ("verify_audit_log",),
        # In-process, its steps would answer with an apology and no audit row could be written.
        ("simulate_call", "--card", "1234", "--pin", "4321"),
    ],
    ids=lambda command: command[0],
)
def test_a_database_never_migrated_is_one_line_that_says_to_migrate(tmp_path, command):
    run = manage(tmp_path, *command)  # as a mistyped SQLite path gives: a new, empty file
    assert (run.returncode, run.stderr) == (
        1,
        "CommandError: The database has no tables: run `manage.py migrate`, or check that "
        "DATABASE_URL names the service's database.\n",
    )


def test_a_database_that_lacks_some_migrations_names_the_first(tmp_path):
    assert manage(tmp_path, "migrate", "--verbosity", "0").returncode == 0
    assert manage(tmp_path, "migrate", "calls", "zero", "--verbosity", "0").returncode == 0
    run = manage(tmp_path, "purge_sessions")
    assert run.returncode == 1
    assert run.stderr.startswith("CommandError: The database lacks ")
    assert run.stderr.endswith(
        " migration(s), calls.0001_initial first: run `manage.py migrate`.\n"
    )
    assert "Traceback" not in run.stderr


@pytest.mark.django_db
def test_a_database_error_on_a_migrated_database_is_not_blamed_on_migrations(monkeypatch):
    def broken(*args, **kwargs):
        raise OperationalError("disk I/O error")

    monkeypatch.setattr(KeyRecord, "changed", broken)
    with pytest.raises(OperationalError, match="disk I/O error"):
        call_command("keyring_status")


@pytest.mark.django_db
def test_a_connection_lost_mid_command_is_raised_as_it_was(monkeypatch):
    # Asking the database which migrations it lacks fails too: "the connection is closed" would
    # hide why it closed.
    def terminated(*args, **kwargs):
        raise OperationalError("terminating connection due to administrator command")

    def closed(*args, **kwargs):
        raise OperationalError("the connection is closed")

    monkeypatch.setattr(KeyRecord, "changed", terminated)
    monkeypatch.setattr(connection.introspection, "table_names", closed)
    with pytest.raises(OperationalError, match="terminating connection"):
        call_command("keyring_status")
