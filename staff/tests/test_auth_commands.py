"""manage.py changepassword and createsuperuser in the audit log (PCI DSS 10.2.1.5)."""

from __future__ import annotations

import getpass
import io
from typing import Any

import pytest
from django.contrib.auth.management.commands import createsuperuser
from django.contrib.auth.models import User
from django.core.management import call_command, get_commands, load_command_class
from django.core.management.base import CommandError
from django.db import connection

from audit import chain as auditchain
from audit.models import AuditEvent
from staff.user_commands import AuditedUserCommand

pytestmark = pytest.mark.django_db

OPERATOR = "ana"  # the OS user running the commands
OLD_PASSWORD = "the old password, long enough"
NEW_PASSWORD = "lantern quietly folds the map"
OTHER_PASSWORD = "a different one entirely, typed second"


@pytest.fixture(autouse=True)
def operator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(getpass, "getuser", lambda: OPERATOR)


@pytest.fixture
def pat() -> User:
    return User.objects.create_user("pat", "pat@example.com", OLD_PASSWORD)


class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def typing(monkeypatch: pytest.MonkeyPatch, *passwords: str) -> list[bool]:
    """getpass answers with ``passwords`` in turn, and fails the test if asked for more. Returns,
    for each prompt, whether a transaction was open while it waited."""
    answers = list(passwords)
    in_transaction: list[bool] = []

    def prompt(prompt: str = "Password: ", stream: Any = None) -> str:
        assert answers, f"an unexpected prompt: {prompt!r}"
        in_transaction.append(connection.in_atomic_block)
        return answers.pop(0)

    monkeypatch.setattr(getpass, "getpass", prompt)
    return in_transaction


def run(*args: str, **options: Any) -> str:
    """The command's output, stdout and stderr together."""
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=out, **options)
    return out.getvalue()


def run_failing(*args: str, **options: Any) -> str:
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command(*args, stdout=out, stderr=out, **options)
    return out.getvalue()


def staff_changes() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event="staff_change").order_by("id"))


def chain_intact() -> bool:
    return auditchain.verify(AuditEvent.objects.order_by("id")).intact


@pytest.mark.parametrize("name", ["changepassword", "createsuperuser"])
def test_staffs_audited_commands_replace_djangos(name):
    assert get_commands()[name] == "staff"
    assert isinstance(load_command_class("staff", name), AuditedUserCommand)


def test_changepassword_is_audited_as_the_os_user(monkeypatch, pat, plaintext):
    typing(monkeypatch, NEW_PASSWORD, NEW_PASSWORD)
    output = run("changepassword", "pat")
    pat.refresh_from_db()
    assert pat.check_password(NEW_PASSWORD)
    (row,) = staff_changes()
    assert (row.actor, row.channel, row.outcome) == (OPERATOR, "system", "success")
    assert row.detail == {
        "action": "password_changed",
        "model": "auth.User",
        "object_id": str(pat.pk),
        "object": "pat",
    }
    assert (row.origin_ip, row.user_agent) == (None, "")
    assert chain_intact()
    plaintext.assert_absent(NEW_PASSWORD)
    assert NEW_PASSWORD not in output


@pytest.mark.parametrize(
    "typed",
    [
        pytest.param([NEW_PASSWORD, OTHER_PASSWORD] * 3, id="never-matched"),
        pytest.param(["Kq7-vz"] * 6, id="rejected-by-validators"),
        pytest.param([""], id="aborted"),
    ],
)
def test_a_password_not_changed_is_a_failure_row_without_what_was_typed(
    monkeypatch, pat, plaintext, typed
):
    typing(monkeypatch, *typed)
    output = run_failing("changepassword", "pat")
    pat.refresh_from_db()
    assert pat.check_password(OLD_PASSWORD)
    (row,) = staff_changes()
    assert (row.actor, row.channel, row.outcome) == (OPERATOR, "system", "failure")
    assert row.detail == {
        "action": "password_changed",
        "model": "auth.User",
        "object_id": str(pat.pk),
        "object": "pat",
        "reason": "not_changed",
    }
    assert chain_intact()
    for password in {p for p in typed if p}:
        plaintext.assert_absent(password)
        assert password not in output


def test_an_unknown_user_is_a_failure_row_that_keeps_no_typed_name(monkeypatch, plaintext):
    typing(monkeypatch)  # no prompt: the user is looked for first
    mistyped = "lantern-quietly-folds-the-map"  # a password typed in the username's place
    run_failing("changepassword", mistyped)
    (row,) = staff_changes()
    assert (row.actor, row.outcome) == (OPERATOR, "failure")
    assert row.detail == {
        "action": "password_changed",
        "model": "auth.User",
        "object_id": "",
        "reason": "unknown_user",
    }
    plaintext.assert_absent(mistyped)


def test_without_a_login_name_the_actor_is_system(monkeypatch, pat):
    def no_login_name() -> str:
        raise OSError("No username set in the environment")

    monkeypatch.setattr(getpass, "getuser", no_login_name)
    typing(monkeypatch, NEW_PASSWORD, NEW_PASSWORD)
    run("changepassword", "pat")
    (row,) = staff_changes()
    assert row.actor == "system"


@pytest.mark.django_db(transaction=True)
def test_no_transaction_is_open_while_a_password_is_typed(monkeypatch, pat):
    # A transaction open at a prompt would hold SQLite's write lock until someone typed.
    in_transaction = typing(monkeypatch, NEW_PASSWORD, NEW_PASSWORD)
    run("changepassword", "pat")
    assert in_transaction == [False, False]
    assert len(staff_changes()) == 1


def refuse_audit_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("audit log unavailable")

    monkeypatch.setattr(AuditEvent, "record", refuse)


def test_a_new_password_is_not_kept_without_its_audit_row(monkeypatch, pat):
    typing(monkeypatch, NEW_PASSWORD, NEW_PASSWORD)
    refuse_audit_rows(monkeypatch)
    with pytest.raises(RuntimeError, match="audit log unavailable"):
        run("changepassword", "pat")
    pat.refresh_from_db()
    assert pat.check_password(OLD_PASSWORD)


@pytest.mark.parametrize("name", ["changepassword", "createsuperuser"])
def test_a_database_other_than_the_audit_logs_is_refused(monkeypatch, pat, name):
    typing(monkeypatch)  # refused before any prompt
    # call_command skips argparse's choices, which would name only "default".
    options = {"username": "pat"} if name == "changepassword" else {"interactive": False}
    with pytest.raises(CommandError, match="Only the default database"):
        call_command(name, database="elsewhere", **options)
    assert staff_changes() == []


def test_createsuperuser_is_audited_as_the_os_user(monkeypatch, plaintext):
    typing(monkeypatch, NEW_PASSWORD, NEW_PASSWORD)
    output = run("createsuperuser", username="sam", email="sam@example.com", stdin=TTY())
    sam = User.objects.get(username="sam")
    assert sam.is_superuser and sam.check_password(NEW_PASSWORD)
    (row,) = staff_changes()
    assert (row.actor, row.channel, row.outcome) == (OPERATOR, "system", "success")
    assert row.detail == {
        "action": "added",
        "model": "auth.User",
        "object_id": str(sam.pk),
        "object": "sam",
    }
    assert chain_intact()
    plaintext.assert_absent(NEW_PASSWORD)
    assert NEW_PASSWORD not in output


def test_createsuperuser_without_input_takes_the_password_from_the_environment(
    monkeypatch, plaintext
):
    typing(monkeypatch)
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", NEW_PASSWORD)
    run("createsuperuser", interactive=False, username="sam", email="sam@example.com")
    sam = User.objects.get(username="sam")
    assert sam.check_password(NEW_PASSWORD)
    (row,) = staff_changes()
    assert (row.outcome, row.detail["action"], row.detail["object_id"]) == (
        "success",
        "added",
        str(sam.pk),
    )
    plaintext.assert_absent(NEW_PASSWORD)


def test_a_refused_createsuperuser_is_a_failure_row_that_keeps_nothing_typed(
    monkeypatch, plaintext
):
    typing(monkeypatch)
    invalid = "lantern quietly folds"  # spaces: no valid username
    run_failing("createsuperuser", interactive=False, username=invalid, email="x@example.com")
    assert not User.objects.exists()
    (row,) = staff_changes()
    assert (row.actor, row.channel, row.outcome) == (OPERATOR, "system", "failure")
    assert row.detail == {
        "action": "added",
        "model": "auth.User",
        "object_id": "",
        "reason": "invalid_input",
    }
    assert chain_intact()
    plaintext.assert_absent(invalid)


def test_a_username_taken_meanwhile_is_a_failure_row_too(monkeypatch):
    User.objects.create_user("sam", password=OLD_PASSWORD)
    # Taken after Django's own check, as by another run at the same moment: the save refuses it.
    monkeypatch.setattr(createsuperuser.Command, "_validate_username", lambda *args: None)
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", NEW_PASSWORD)
    output = run_failing(
        "createsuperuser", interactive=False, username="sam", email="s@example.com"
    )
    assert User.objects.get(username="sam").check_password(OLD_PASSWORD)
    (row,) = staff_changes()
    assert (row.outcome, row.detail["reason"]) == ("failure", "invalid_input")
    assert chain_intact()
    assert NEW_PASSWORD not in output


def test_a_superuser_is_not_created_without_its_audit_row(monkeypatch):
    typing(monkeypatch, NEW_PASSWORD, NEW_PASSWORD)
    refuse_audit_rows(monkeypatch)
    with pytest.raises(RuntimeError, match="audit log unavailable"):
        run("createsuperuser", username="sam", email="sam@example.com", stdin=TTY())
    assert not User.objects.filter(username="sam").exists()
