"""Every command that needs the database says in one line when it cannot connect to it."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import OperationalError, connection

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
    ("changepassword", "ops"),
    ("createsuperuser", "--noinput", "--username", "ops", "--email", "ops@example.com"),
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
