"""Users added and passwords changed outside the admin, in the audit log (PCI DSS 10.2.1.5):
Django's own createsuperuser and changepassword, and the shell (staff/users.py)."""

from __future__ import annotations

import getpass
import io
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command, get_commands
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.db.models import Max

from audit import chain as auditchain
from audit.models import AuditEvent
from conftest import make_staff, verified_client

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


def newest() -> int:
    """The newest audit row's id: rows written after it are the test's own."""
    return AuditEvent.objects.aggregate(newest=Max("id"))["newest"] or 0


def staff_changes(after: int = 0) -> list[AuditEvent]:
    rows = AuditEvent.objects.filter(event="staff_change", id__gt=after)
    return list(rows.order_by("id"))


def change(action: str, user: User) -> tuple[str, str, str, dict[str, str]]:
    """A row of staff/users.py, as (actor, channel, outcome, detail)."""
    detail = {"action": action, "model": "auth.User", "object_id": str(user.pk)}
    return (OPERATOR, "system", "success", {**detail, "object": user.username})


def shown(rows: list[AuditEvent]) -> list[tuple[str, str, str, dict[str, str]]]:
    return [(row.actor, row.channel, row.outcome, row.detail) for row in rows]


def chain_intact() -> bool:
    return auditchain.verify(AuditEvent.objects.order_by("id")).intact


@pytest.mark.parametrize("name", ["changepassword", "createsuperuser"])
def test_the_commands_are_djangos_own(name):
    assert get_commands()[name] == "django.contrib.auth"


def test_changepassword_is_audited_as_the_os_user(monkeypatch, pat, plaintext):
    typing(monkeypatch, NEW_PASSWORD, NEW_PASSWORD)
    mark = newest()
    output = run("changepassword", "pat")
    pat.refresh_from_db()
    assert pat.check_password(NEW_PASSWORD)
    rows = staff_changes(after=mark)
    assert shown(rows) == [change("password_changed", pat)]
    assert (rows[0].origin_ip, rows[0].user_agent) == (None, "")
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
def test_a_password_not_changed_writes_no_change_and_keeps_nothing_typed(
    monkeypatch, pat, plaintext, typed
):
    # Django's command refuses these without saving: no hook sees the refusal, so it goes
    # unrecorded (docs/audit-events.md), and no row may claim a change.
    typing(monkeypatch, *typed)
    mark = newest()
    output = run_failing("changepassword", "pat")
    pat.refresh_from_db()
    assert pat.check_password(OLD_PASSWORD)
    assert staff_changes(after=mark) == []
    for password in {p for p in typed if p}:
        plaintext.assert_absent(password)
        assert password not in output


def test_without_a_login_name_the_actor_is_system(monkeypatch, pat):
    def no_login_name() -> str:
        raise OSError("No username set in the environment")

    monkeypatch.setattr(getpass, "getuser", no_login_name)
    typing(monkeypatch, NEW_PASSWORD, NEW_PASSWORD)
    mark = newest()
    run("changepassword", "pat")
    (row,) = staff_changes(after=mark)
    assert row.actor == "system"


@pytest.mark.django_db(transaction=True)
def test_no_transaction_is_open_while_a_password_is_typed(monkeypatch, pat):
    # A transaction open at a prompt would hold SQLite's write lock until someone typed.
    in_transaction = typing(monkeypatch, NEW_PASSWORD, NEW_PASSWORD)
    mark = newest()
    run("changepassword", "pat")
    assert in_transaction == [False, False]
    assert len(staff_changes(after=mark)) == 1


def refuse_audit_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("audit log unavailable")

    monkeypatch.setattr(AuditEvent, "record", refuse)


def test_a_row_that_cannot_be_written_ends_the_command_on_that_error(monkeypatch, pat):
    typing(monkeypatch, NEW_PASSWORD, NEW_PASSWORD)
    refuse_audit_rows(monkeypatch)
    with pytest.raises(RuntimeError, match="audit log unavailable"):
        run("changepassword", "pat")


def test_createsuperuser_is_audited_as_the_os_user(monkeypatch, plaintext):
    typing(monkeypatch, NEW_PASSWORD, NEW_PASSWORD)
    output = run("createsuperuser", username="sam", email="sam@example.com", stdin=TTY())
    sam = User.objects.get(username="sam")
    assert sam.is_superuser and sam.check_password(NEW_PASSWORD)
    # One row: Django's manager stores the first password with the new user, not through
    # set_password().
    assert shown(staff_changes()) == [change("added", sam)]
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
    assert shown(staff_changes()) == [change("added", sam)]
    plaintext.assert_absent(NEW_PASSWORD)


def test_a_refused_createsuperuser_writes_nothing_and_keeps_nothing_typed(monkeypatch, plaintext):
    typing(monkeypatch)
    invalid = "lantern quietly folds"  # spaces: no valid username
    run_failing("createsuperuser", interactive=False, username=invalid, email="x@example.com")
    assert not User.objects.exists()
    assert staff_changes() == []
    plaintext.assert_absent(invalid)


def test_a_user_added_in_the_shell_and_given_a_password_is_audited():
    sam = User.objects.create_user("sam")  # no password: an unusable one
    assert shown(staff_changes()) == [change("added", sam)]
    sam.set_password(NEW_PASSWORD)
    sam.save()
    assert shown(staff_changes()) == [change("added", sam), change("password_changed", sam)]


def test_a_save_that_sets_no_password_is_no_change(pat, settings):
    # A sign-in under a newer hasher saves the same password re-hashed: no change of password.
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.ScryptPasswordHasher",
        *settings.PASSWORD_HASHERS,
    ]
    mark = newest()
    pat.is_staff = True
    pat.save()
    assert pat.check_password(OLD_PASSWORD)
    pat.refresh_from_db()
    assert pat.password.startswith("scrypt$")
    assert staff_changes(after=mark) == []


def test_in_a_transaction_the_user_is_not_kept_without_its_row(monkeypatch):
    refuse_audit_rows(monkeypatch)
    with pytest.raises(RuntimeError, match="audit log unavailable"), transaction.atomic():
        User.objects.create_user("sam", password=NEW_PASSWORD)
    assert not User.objects.filter(username="sam").exists()


def test_in_a_transaction_the_row_rolls_back_with_the_change():
    with pytest.raises(RuntimeError, match="the change failed"), transaction.atomic():
        User.objects.create_user("sam", password=NEW_PASSWORD)
        assert len(staff_changes()) == 1
        raise RuntimeError("the change failed after its rows were written")
    assert staff_changes() == []


def test_in_the_admin_its_own_rows_are_the_only_ones():
    # The admin records these with the staff member and the address: a second row from the
    # hooks would count each change twice.
    root = verified_client(make_staff("root", superuser=True))
    mark = newest()
    form = {"username": "sam", "usable_password": "true"}
    response = root.post(
        "/admin/auth/user/add/", {**form, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )
    assert response.status_code == 302
    sam = User.objects.get(username="sam")
    response = root.post(
        f"/admin/auth/user/{sam.pk}/password/",
        {"usable_password": "true", "password1": OTHER_PASSWORD, "password2": OTHER_PASSWORD},
    )
    assert response.status_code == 302
    rows = staff_changes(after=mark)
    assert [(r.actor, r.channel, r.detail["action"]) for r in rows] == [
        ("root", "admin", "added"),
        ("root", "admin", "changed"),
    ]
