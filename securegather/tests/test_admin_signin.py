from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from securegather.models import AuditEvent
from securegather.tests.staff import PASSWORD, make_staff, totp_now

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/?next=/admin/"


def sign_in(client: Client, username: str, password: str, token: str = "") -> object:
    return client.post(
        LOGIN,
        {"username": username, "password": password, "otp_token": token, "next": "/admin/"},
    )


def reaches_admin(client: Client) -> bool:
    return client.get("/admin/").status_code == 200


def audit(event: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event=event).order_by("id"))


def test_password_and_totp_reach_the_admin_and_are_audited():
    user = make_staff("olive", ops=True)
    client = Client()
    response = sign_in(client, "olive", PASSWORD, totp_now(user))
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert reaches_admin(client)
    (login,) = audit("staff_login")
    assert (login.actor, login.channel, login.outcome) == ("olive", "admin", "success")
    assert login.detail == {"second_factor": "TOTPDevice"}
    assert login.origin_ip == "127.0.0.1"


def test_the_right_password_without_a_code_does_not_reach_the_admin():
    make_staff("olive", ops=True)
    client = Client()
    response = sign_in(client, "olive", PASSWORD)
    assert response.status_code == 200
    assert "Please enter your OTP token." in response.content.decode()
    assert not reaches_admin(client)


def test_a_wrong_code_does_not_reach_the_admin_and_is_audited():
    user = make_staff("olive", ops=True)
    wrong = f"{(int(totp_now(user)) + 1) % 1_000_000:06d}"
    client = Client()
    response = sign_in(client, "olive", PASSWORD, wrong)
    assert "Invalid token" in response.content.decode()
    assert not reaches_admin(client)
    failed = audit("staff_login_failed")
    assert [(e.actor, e.detail["reason"]) for e in failed] == [("olive", "second_factor")]
    assert (failed[0].origin_ip, failed[0].channel) == ("127.0.0.1", "admin")
    assert wrong not in str(failed[0].detail)


def test_staff_without_a_device_cannot_reach_the_admin_even_when_signed_in():
    user = make_staff("olive", ops=True)
    user.totpdevice_set.all().delete()
    assert "Please enter your OTP token." in sign_in(Client(), "olive", PASSWORD).content.decode()
    client = Client()
    client.force_login(user)  # a password session without the second factor
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_a_wrong_password_is_audited_without_the_password():
    make_staff("olive", ops=True)
    sign_in(Client(), "olive", "not-the-password")
    sign_in(Client(), "nobody", "olive-typed-her-password-here")
    failed = audit("staff_login_failed")
    assert [(e.actor, e.detail["reason"]) for e in failed] == [
        ("olive", "password"),
        ("unknown", "password"),
    ]
    assert "olive-typed" not in repr([vars(e) for e in failed])


def test_the_eleventh_password_is_refused_even_when_right():
    user = make_staff("olive", ops=True)
    for _ in range(10):
        sign_in(Client(), "olive", "wrong password")
    client = Client()
    response = sign_in(client, "olive", PASSWORD, totp_now(user))
    assert response.status_code == 429
    assert not reaches_admin(client)
    assert {e.actor for e in audit("staff_locked_out")} == {"olive"}
    assert audit("staff_login_failed")[-1].detail["reason"] == "locked_out"
    assert audit("staff_login") == []


def test_nine_failures_do_not_lock_and_a_success_resets_the_count():
    user = make_staff("olive", ops=True)
    for _ in range(9):
        sign_in(Client(), "olive", "wrong password")
    assert reaches_admin_after_sign_in(user)
    for _ in range(9):
        sign_in(Client(), "olive", "wrong password")
    assert audit("staff_locked_out") == []


def reaches_admin_after_sign_in(user) -> bool:
    client = Client()
    sign_in(client, user.username, PASSWORD, totp_now(user))
    return reaches_admin(client)


def test_the_lockout_lasts_thirty_minutes_from_the_last_attempt():
    user = make_staff("olive", ops=True)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for _ in range(10):
            sign_in(Client(), "olive", "wrong password")
        clock.shift(timedelta(minutes=29))
        assert not reaches_admin_after_sign_in(user)
        # That refused try started the 30 minutes again (axes' default: no waiting it out early).
        clock.shift(timedelta(minutes=29))
        assert not reaches_admin_after_sign_in(user)
        clock.shift(timedelta(minutes=30, seconds=1))
        assert reaches_admin_after_sign_in(user)


def test_fifteen_idle_minutes_end_the_session_and_activity_keeps_it():
    user = make_staff("olive", ops=True)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        client = Client()
        sign_in(client, "olive", PASSWORD, totp_now(user))
        for _ in range(3):  # 42 minutes of work, never 15 idle
            clock.shift(timedelta(minutes=14))
            assert reaches_admin(client)
        clock.shift(timedelta(minutes=15, seconds=1))
        response = client.get("/admin/")
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_sign_out_is_audited():
    user = make_staff("olive", ops=True)
    client = Client()
    sign_in(client, "olive", PASSWORD, totp_now(user))
    client.post("/admin/logout/")
    assert [e.actor for e in audit("staff_logout")] == ["olive"]
    assert not reaches_admin(client)
