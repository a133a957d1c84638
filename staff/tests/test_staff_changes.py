"""Changes made through the admin, and a staff member's own password change, in the audit log."""

from __future__ import annotations

import base64
import binascii

import pytest
from axes.models import AccessAttempt
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Group, User
from django.contrib.sessions.backends.db import SessionStore
from django.db import transaction
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import AuditEvent
from conftest import PASSWORD, make_staff, verified_client

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a new password nobody types twice"
GUESS = "olive guessing her old password"


def staff_changes() -> list[AuditEvent]:
    """The admin's rows: not those of the users the test made outside a request (staff/users.py),
    which test_auth_commands.py covers, with the proof that a request writes none of those."""
    rows = AuditEvent.objects.filter(event="staff_change", channel="admin")
    return list(rows.order_by("id"))


def places_holding(secret: str) -> list[str]:
    """Which audit columns hold ``secret``: named, never shown, so a failure prints no secret."""
    return [
        f"audit row {row['id']}: {name}"
        for row in AuditEvent.objects.values()
        for name, value in row.items()
        if secret in str(value)
    ]


@pytest.fixture
def root() -> User:
    return make_staff("root", superuser=True)


@pytest.fixture
def root_client(root: User) -> Client:
    return verified_client(root)


def user_form(user: User, **changes: object) -> dict[str, object]:
    """The user change page's form as the browser sends it back, with ``changes``."""
    data: dict[str, object] = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": "on",
        "is_staff": "on",
        "groups": [],
        "user_permissions": [],
        "date_joined_0": f"{user.date_joined:%Y-%m-%d}",
        "date_joined_1": f"{user.date_joined:%H:%M:%S}",
        "initial-date_joined_0": f"{user.date_joined:%Y-%m-%d}",
        "initial-date_joined_1": f"{user.date_joined:%H:%M:%S}",
    }
    return {**data, **changes}


def test_adding_a_staff_user_is_audited_without_the_password(root_client, root):
    response = root_client.post(
        "/admin/auth/user/add/",
        {
            "username": "pat",
            "usable_password": "true",
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
        },
    )
    assert response.status_code == 302
    pat = User.objects.get(username="pat")
    (row,) = staff_changes()
    assert (row.actor, row.channel, row.outcome) == ("root", "admin", "success")
    assert row.detail == {
        "action": "added",
        "model": "auth.User",
        "object_id": str(pat.pk),
        "object": "pat",
        "fields": [],
    }
    assert places_holding(NEW_PASSWORD) == []


def test_granting_staff_rights_and_a_group_is_audited_with_field_names_only(root_client):
    pat = User.objects.create_user("pat", "pat@example.com", PASSWORD)
    ops = Group.objects.get(name="ops")
    data = user_form(pat, email="pat@elsewhere.example", is_superuser="on", groups=[ops.pk])
    response = root_client.post(
        f"/admin/auth/user/{pat.pk}/change/", data, REMOTE_ADDR="10.1.2.3", HTTP_USER_AGENT="Edge"
    )
    assert response.status_code == 302
    (row,) = staff_changes()
    # Where it came from (PCI DSS 10.2.2), though the admin's LogEntry carries no request.
    assert (row.origin_ip, row.user_agent, row.channel) == ("10.1.2.3", "Edge", "admin")
    assert row.detail == {
        "action": "changed",
        "model": "auth.User",
        "object_id": str(pat.pk),
        "object": "pat",
        "fields": ["Email address", "Groups", "Staff status", "Superuser status"],
    }
    # Names, never values: neither the new address nor the group's name.
    assert places_holding("elsewhere.example") == []
    assert "ops" not in str(row.detail)


def test_a_superuser_setting_a_password_is_one_row_without_the_password(root_client, root):
    pat = make_staff("pat")
    response = root_client.post(
        f"/admin/auth/user/{pat.pk}/password/",
        {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    pat.refresh_from_db()
    assert pat.check_password(NEW_PASSWORD)
    (row,) = staff_changes()  # the LogEntry's row, and no second one from the password change
    assert row.actor == "root"
    assert row.detail == {
        "action": "changed",
        "model": "auth.User",
        "object_id": str(pat.pk),
        "object": "pat",
        "fields": ["password"],
    }
    assert places_holding(NEW_PASSWORD) == []


def test_adding_and_deleting_a_totp_device_is_audited_without_its_key(root_client):
    pat = make_staff("pat")
    device = TOTPDevice.objects.get(user=pat)
    response = root_client.post(f"/admin/otp_totp/totpdevice/{device.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(pk=device.pk).exists()
    (row,) = staff_changes()
    assert row.detail == {
        "action": "deleted",
        "model": "otp_totp.TOTPDevice",
        "object_id": str(device.pk),
        "object": "authenticator (pat)",
        "fields": [],
    }
    assert places_holding(device.key) == []


def test_deleting_several_groups_at_once_records_each(root_client):
    groups = [Group.objects.create(name=name) for name in ("night shift", "day shift")]
    response = root_client.post(
        "/admin/auth/group/",
        {"action": "delete_selected", "_selected_action": [g.pk for g in groups], "post": "yes"},
    )
    assert response.status_code == 302
    assert not Group.objects.filter(pk__in=[g.pk for g in groups]).exists()
    rows = staff_changes()
    assert sorted((r.actor, r.detail["action"], r.detail["object"]) for r in rows) == [
        ("root", "deleted", "day shift"),
        ("root", "deleted", "night shift"),
    ]
    assert {r.detail["model"] for r in rows} == {"auth.Group"}


def test_lifting_a_staff_lockout_by_deleting_its_axes_record_names_the_user(root_client):
    make_staff("olive")
    for _ in range(10):
        Client().post("/admin/login/", {"username": "olive", "password": "wrong password"})
    attempt = AccessAttempt.objects.get()
    response = root_client.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    (row,) = staff_changes()
    assert row.detail == {
        "action": "deleted",
        "model": "axes.AccessAttempt",
        "object_id": str(attempt.pk),
        "username": "olive",
        "fields": [],
    }


def test_the_audit_row_rolls_back_with_the_change(root):
    pat = User.objects.create_user("pat")
    with pytest.raises(RuntimeError), transaction.atomic():
        LogEntry.objects.log_actions(root.pk, [pat], CHANGE)
        assert len(staff_changes()) == 1  # written with the entry, in its transaction
        raise RuntimeError("the change failed after its entry was written")
    assert staff_changes() == []


def test_a_change_whose_audit_row_cannot_be_written_is_not_kept(root_client, monkeypatch):
    pat = User.objects.create_user("pat", "pat@example.com", PASSWORD)

    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("audit log unavailable")

    monkeypatch.setattr(AuditEvent, "record", refuse)
    with pytest.raises(RuntimeError):
        root_client.post(
            f"/admin/auth/user/{pat.pk}/change/", user_form(pat, email="pat@elsewhere.example")
        )
    pat.refresh_from_db()
    assert pat.email == "pat@example.com"
    assert not LogEntry.objects.exists()


def change_own_password(old: str):
    """Olive, signed in, changes her password giving ``old`` as the old one."""
    olive = make_staff("olive", ops=True)
    response = verified_client(olive).post(
        "/admin/password_change/",
        {"old_password": old, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    olive.refresh_from_db()
    return olive, response


def test_changing_ones_own_password_is_audited():
    olive, response = change_own_password(PASSWORD)
    assert response.status_code == 302
    assert olive.check_password(NEW_PASSWORD)
    (row,) = staff_changes()
    assert (row.actor, row.channel, row.outcome) == ("olive", "admin", "success")
    assert row.detail == {
        "action": "password_changed",
        "model": "auth.User",
        "object_id": str(olive.pk),
    }
    assert row.origin_ip == "127.0.0.1"
    assert places_holding(NEW_PASSWORD) == []
    assert places_holding(PASSWORD) == []


def test_a_wrong_old_password_is_audited_as_a_failure():
    olive, response = change_own_password(GUESS)
    assert response.status_code == 200
    assert olive.check_password(PASSWORD)
    (row,) = staff_changes()
    assert (row.actor, row.outcome) == ("olive", "failure")
    assert row.detail == {
        "action": "password_changed",
        "model": "auth.User",
        "object_id": str(olive.pk),
        "reason": "old_password",
    }
    assert places_holding(GUESS) == []
    assert places_holding(NEW_PASSWORD) == []


FIVE_WRONG_THEN_SIGNED_OUT = [("staff_change", "failure")] * 5 + [("staff_logout", "info")]


def trail() -> list[tuple[str, str]]:
    """Each row the admin wrote after the sign-in, as (event, outcome)."""
    rows = AuditEvent.objects.filter(channel="admin").exclude(event="staff_login").order_by("id")
    return list(rows.values_list("event", "outcome"))


def test_five_wrong_old_passwords_sign_the_session_out():
    olive = make_staff("olive", ops=True)
    client = verified_client(olive)
    form = {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    for _ in range(4):
        response = client.post("/admin/password_change/", {"old_password": GUESS, **form})
        assert response.status_code == 200
    response = client.post("/admin/password_change/", {"old_password": GUESS, **form}, follow=True)
    assert response.redirect_chain[0][0] == "/admin/login/"
    assert "Too many wrong passwords: sign in again." in response.content.decode()
    # Signed out: the right old password no longer reaches the form.
    response = client.post("/admin/password_change/", {"old_password": PASSWORD, **form})
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    olive.refresh_from_db()
    assert olive.check_password(PASSWORD)
    assert trail() == FIVE_WRONG_THEN_SIGNED_OUT
    signed_out = AuditEvent.objects.order_by("id").last()
    assert (signed_out.actor, signed_out.detail) == ("olive", {"reason": "wrong_old_passwords"})
    admin_rows = AuditEvent.objects.filter(channel="admin")
    assert set(admin_rows.values_list("actor", flat=True)) == {"olive"}
    assert places_holding(GUESS) == []


def test_a_changed_password_starts_the_count_afresh():
    olive = make_staff("olive", ops=True)
    client = verified_client(olive)
    form = {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    for _ in range(4):
        client.post("/admin/password_change/", {"old_password": GUESS, **form})
    assert (
        client.post("/admin/password_change/", {"old_password": PASSWORD, **form}).status_code
        == 302
    )
    form = {"new_password1": PASSWORD, "new_password2": PASSWORD}
    for _ in range(4):
        response = client.post("/admin/password_change/", {"old_password": GUESS, **form})
        assert response.status_code == 200  # still signed in
    assert not AuditEvent.objects.filter(event="staff_logout").exists()


def guesses_meanwhile(monkeypatch: pytest.MonkeyPatch, client: Client, count: int) -> None:
    """While the next old password is checked, ``count`` wrong ones of the same session (a second
    tab, or a script sending them at once) are answered: a request then saves the session it
    loaded before them."""
    other = Client()
    other.cookies = client.cookies
    check_password = User.check_password
    form = {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}

    def meanwhile(user: User, raw_password: str) -> bool:
        monkeypatch.setattr(User, "check_password", check_password)
        for _ in range(count):
            other.post("/admin/password_change/", {"old_password": GUESS, **form})
        return check_password(user, raw_password)

    monkeypatch.setattr(User, "check_password", meanwhile)


def test_wrong_old_passwords_given_at_once_all_count(monkeypatch):
    olive = make_staff("olive", ops=True)
    client = verified_client(olive)
    guesses_meanwhile(monkeypatch, client, 4)
    form = {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    response = client.post("/admin/password_change/", {"old_password": GUESS, **form})
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    response = client.post("/admin/password_change/", {"old_password": PASSWORD, **form})
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert trail() == FIVE_WRONG_THEN_SIGNED_OUT


def test_a_try_sent_alongside_the_fifth_is_not_checked(monkeypatch):
    olive = make_staff("olive", ops=True)
    client = verified_client(olive)
    other = Client()
    other.cookies = client.cookies
    load = SessionStore.load
    form = {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}

    def meanwhile(session: SessionStore) -> dict[str, object]:
        # This request has found its session signed in; five others of it are answered now.
        loaded = load(session)
        monkeypatch.setattr(SessionStore, "load", load)
        for _ in range(5):
            other.post("/admin/password_change/", {"old_password": GUESS, **form})
        return loaded

    monkeypatch.setattr(SessionStore, "load", meanwhile)
    response = client.post("/admin/password_change/", {"old_password": PASSWORD, **form})
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    olive.refresh_from_db()
    assert olive.check_password(PASSWORD)  # the sixth try, right or not, was not checked
    assert trail() == FIVE_WRONG_THEN_SIGNED_OUT


def test_a_new_password_is_not_kept_without_its_audit_row(monkeypatch):
    olive = make_staff("olive", ops=True)
    client = verified_client(olive)

    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("audit log unavailable")

    monkeypatch.setattr("staff.admin_site.record_own_password_change", refuse)
    with pytest.raises(RuntimeError):
        client.post(
            "/admin/password_change/",
            {
                "old_password": PASSWORD,
                "new_password1": NEW_PASSWORD,
                "new_password2": NEW_PASSWORD,
            },
        )
    olive.refresh_from_db()
    assert olive.check_password(PASSWORD)


def test_a_totp_devices_page_shows_no_secret(root_client):
    pat = make_staff("pat")
    device = TOTPDevice.objects.get(user=pat)
    base = f"/admin/otp_totp/totpdevice/{device.pk}"
    page = root_client.get(f"{base}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    secret = binascii.unhexlify(device.key)
    shown = [
        form
        for form, text in [
            ("hex", device.key),
            ("base32", base64.b32encode(secret).decode().rstrip("=")),
        ]
        if text.lower() in html.lower()
    ]
    assert shown == []
    assert 'name="key"' not in html
    # Nor its setup pages: the otpauth:// URI and its QR code hold the key.
    assert root_client.get(f"{base}/config/").status_code == 403
    assert root_client.get(f"{base}/qrcode/").status_code == 403
