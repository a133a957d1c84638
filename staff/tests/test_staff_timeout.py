"""An admin session left idle past 15 minutes is signed out, and purge_sessions records it."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core.management import call_command, get_commands
from django.urls import reverse

from audit.models import AuditEvent
from calls.management.commands.purge_sessions import purge_sessions
from conftest import START, make_staff, verified_client
from staff.models import WrongOldPasswords

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(clock):
    client = verified_client(make_staff("ops", ops=True))
    assert client.get(reverse("admin:index")).status_code == 200  # the session's last use
    return client


def logouts() -> list[tuple[str, str, str, dict]]:
    rows = AuditEvent.objects.filter(event="staff_logout").order_by("id")
    return list(rows.values_list("actor", "channel", "outcome", "detail"))


def test_an_idle_session_is_recorded_as_signed_out_when_it_is_purged(staff_client, clock):
    clock.shift(timedelta(minutes=15, seconds=1))
    response = staff_client.get(reverse("admin:index"))
    assert response.status_code == 302 and "/login/" in response["Location"]  # signed out
    assert logouts() == []  # Django tells no one
    assert purge_sessions()["staff_sessions"] == 1
    assert logouts() == [
        (
            "ops",
            "admin",
            "info",
            {"reason": "idle_timeout", "expired_at": (START + timedelta(minutes=15)).isoformat()},
        )
    ]
    assert not Session.objects.exists()
    # Found once: the next run has nothing to record.
    assert purge_sessions()["staff_sessions"] == 0
    assert len(logouts()) == 1


def test_an_idle_session_with_wrong_old_passwords_is_one_session(staff_client, clock):
    form = {"old_password": "a guess", "new_password1": "x" * 20, "new_password2": "x" * 20}
    assert staff_client.post(reverse("admin:password_change"), form).status_code == 200
    assert WrongOldPasswords.objects.count() == 1
    clock.shift(timedelta(minutes=16))
    assert purge_sessions()["staff_sessions"] == 1  # its count, deleted with it, is no session
    assert not WrongOldPasswords.objects.exists()
    assert [detail["reason"] for *_, detail in logouts()] == ["idle_timeout"]


def test_a_session_in_use_is_kept(staff_client, clock):
    clock.shift(timedelta(minutes=14))
    assert staff_client.get(reverse("admin:index")).status_code == 200  # and its clock restarts
    clock.shift(timedelta(minutes=14))
    assert purge_sessions()["staff_sessions"] == 0
    assert Session.objects.count() == 1 and logouts() == []


def test_a_session_signed_out_is_not_recorded_twice(staff_client, clock):
    staff_client.post(reverse("admin:logout"))
    assert [actor for actor, *_ in logouts()] == ["ops"]
    clock.shift(timedelta(hours=1))
    purge_sessions()
    assert [detail for *_, detail in logouts()] == [{}]


def test_an_expired_session_with_no_one_signed_in_goes_without_a_row(clock):
    session = SessionStore()
    session["seen"] = True
    session.create()
    clock.shift(timedelta(minutes=16))
    assert purge_sessions()["staff_sessions"] == 1
    assert not Session.objects.exists() and logouts() == []


def test_a_user_deleted_since_is_recorded_as_unknown(staff_client, clock):
    User.objects.filter(username="ops").delete()
    clock.shift(timedelta(minutes=16))
    purge_sessions()
    assert [actor for actor, *_ in logouts()] == ["unknown"]


def test_djangos_clearsessions_records_the_sessions_it_deletes_too(staff_client, clock):
    # Django's documentation has expired sessions cleared from cron with it: a session it
    # deleted unrecorded would be a sign-out the audit log never sees. Its own command, through
    # the session store's clear_expired() (staff/sessions.py).
    assert get_commands()["clearsessions"] == "django.contrib.sessions"
    clock.shift(timedelta(minutes=16))
    call_command("clearsessions")
    assert [(actor, detail["reason"]) for actor, *_, detail in logouts()] == [
        ("ops", "idle_timeout")
    ]
    assert not Session.objects.exists()
