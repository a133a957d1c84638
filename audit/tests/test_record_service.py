"""record_service: the web service's start, reload and stop, as audit rows by the OS user."""

import socket

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit import chain as auditchain
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("what", ["started", "reloaded", "stopped"])
def test_each_is_a_row_naming_the_host_and_the_server_process(monkeypatch, what):
    monkeypatch.setattr("getpass.getuser", lambda: "securegather")
    call_command("record_service", what, "--pid", "4321")
    row = AuditEvent.objects.get()
    assert (row.event, row.outcome, row.actor, row.channel, row.detail) == (
        f"service_{what}",
        "info",
        "securegather",
        "system",
        {"host": socket.gethostname(), "pid": 4321},
    )


def test_without_a_pid_the_row_names_the_host_alone():
    call_command("record_service", "stopped")
    assert AuditEvent.objects.get().detail == {"host": socket.gethostname()}


def test_the_rows_join_the_chain():
    call_command("record_service", "started")
    call_command("record_service", "stopped")
    assert auditchain.verify(AuditEvent.objects.order_by("id")).intact


def test_anything_else_is_refused_and_writes_nothing():
    with pytest.raises(CommandError, match="invalid choice: 'paused'"):
        call_command("record_service", "paused")
    assert not AuditEvent.objects.exists()
