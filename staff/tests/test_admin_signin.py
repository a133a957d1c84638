import logging
from datetime import timedelta

import pytest
import time_machine
from axes.models import AccessAttempt
from django.apps import apps
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from conftest import PASSWORD, make_staff, totp_now

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/?next=/admin/"
# A password typed into the username box, as happens when a browser fills the wrong field.
TYPED_AS_USERNAME = "Tr0ub4dor&3-olive-typed-in-the-wrong-box"


def sign_in(
    client: Client, username: str, password: str, token: str = "", **headers: str
) -> object:
    return client.post(
        LOGIN,
        {"username": username, "password": password, "otp_token": token, "next": "/admin/"},
        **headers,
    )


def reaches_admin(client: Client) -> bool:
    return client.get("/admin/").status_code == 200


def audit(event: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event=event).order_by("id"))


def places_holding(secret: str, caplog: pytest.LogCaptureFixture | None = None) -> list[str]:
    """Which axes and audit columns, and which log records, hold ``secret``: named, never shown,
    so that a failing test prints no secret."""
    places = [
        f"{model._meta.label}.{name}"
        for model in [*apps.get_app_config("axes").get_models(), AuditEvent]
        for row in model._default_manager.values()
        for name, value in row.items()
        if secret in str(value)
    ]
    for record in caplog.records if caplog else []:
        if secret in record.getMessage() or secret in (record.exc_text or ""):
            places.append(f"log record from {record.name} ({record.levelname})")
    return places


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
    assert PASSWORD not in response.content.decode()  # not written back into the form
    assert not reaches_admin(client)


def test_a_wrong_code_does_not_reach_the_admin_and_is_audited():
    user = make_staff("olive", ops=True)
    wrong = f"{(int(totp_now(user)) + 1) % 1_000_000:06d}"
    client = Client()
    response = sign_in(client, "olive", PASSWORD, wrong)
    assert "Invalid token" in response.content.decode()
    assert PASSWORD not in response.content.decode()
    assert not reaches_admin(client)
    failed = audit("staff_login_failed")
    assert [(e.actor, e.detail["reason"]) for e in failed] == [("olive", "second_factor")]
    assert failed[0].detail["otp_error"] == "invalid_token"
    assert (failed[0].origin_ip, failed[0].channel) == ("127.0.0.1", "admin")
    assert wrong not in str(failed[0].detail)


@pytest.mark.parametrize(
    "device", ["auth.user/1", "otp_totp.totpdevice/999", "otp_totp.totpdevice/x", "nonsense"]
)
def test_a_device_id_that_is_no_device_of_the_user_is_a_wrong_code(device):
    user = make_staff("olive", ops=True)
    client = Client()
    response = client.post(
        LOGIN,
        {"username": "olive", "password": PASSWORD, "otp_token": totp_now(user)}
        | {"otp_device": device},
    )
    assert response.status_code == 200
    assert not reaches_admin(client)
    failed = audit("staff_login_failed")
    assert [(e.actor, e.detail["reason"]) for e in failed] == [("olive", "second_factor")]


@pytest.mark.parametrize(
    ("button", "otp_error"),
    [({}, "token_required"), ({"otp_challenge": "Get challenge"}, "not_interactive")],
    ids=["no code", "challenge button"],
)
def test_the_right_password_without_a_code_is_audited_as_a_wrong_code_is(button, otp_error):
    make_staff("olive", ops=True)
    client = Client()
    response = client.post(
        LOGIN, {"username": "olive", "password": PASSWORD, "otp_token": "", **button}
    )
    assert response.status_code == 200
    assert not reaches_admin(client)
    failed = audit("staff_login_failed")
    assert [(e.actor, e.detail) for e in failed] == [
        ("olive", {"reason": "second_factor", "otp_error": otp_error})
    ]
    assert (failed[0].origin_ip, failed[0].channel) == ("127.0.0.1", "admin")
    # As a wrong code: no axes failure (django-otp throttles the device), so no lockout either.
    assert not AccessAttempt.objects.exists()
    assert places_holding(PASSWORD) == []


def test_staff_without_a_device_cannot_reach_the_admin_even_when_signed_in():
    user = make_staff("olive", ops=True)
    user.totpdevice_set.all().delete()
    page = sign_in(Client(), "olive", PASSWORD).content.decode()
    # Says why, and how to get one; no empty list of devices, no challenge button.
    assert "This account has no authenticator yet" in page
    assert "manage.py enrol_totp olive" in page
    assert "Please select a device." not in page
    assert 'name="otp_device"' not in page and 'name="otp_challenge"' not in page
    (refused,) = audit("staff_login_failed")
    assert refused.detail == {"reason": "second_factor", "otp_error": "no_device"}
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


def test_the_right_password_of_a_user_who_is_not_staff_is_refused_and_audited():
    User.objects.create_user("carol", "carol@example.com", PASSWORD)  # not staff
    client = Client()
    response = sign_in(client, "carol", PASSWORD)
    assert response.status_code == 200 and not reaches_admin(client)
    failed = audit("staff_login_failed")
    assert [(e.actor, e.detail) for e in failed] == [("carol", {"reason": "not_staff"})]
    assert places_holding(PASSWORD) == []


def test_the_eleventh_password_is_refused_even_when_right():
    user = make_staff("olive", ops=True)
    # From 10 addresses: the count that locks is the username's.
    for n in range(10):
        sign_in(Client(REMOTE_ADDR=f"192.0.2.{n + 1}"), "olive", "wrong password")
    client = Client()
    response = sign_in(client, "olive", PASSWORD, totp_now(user))
    assert response.status_code == 429
    assert not reaches_admin(client)
    assert {e.actor for e in audit("staff_locked_out")} == {"olive"}
    assert audit("staff_login_failed")[-1].detail["reason"] == "locked_out"
    assert audit("staff_login") == []


def test_behind_a_declared_proxy_one_addresss_failures_lock_that_address_only(settings):
    settings.SECUREGATHER_TRUSTED_PROXY_HEADER = "X-Forwarded-For"
    settings.SECUREGATHER_TRUSTED_PROXY_COUNT = 1
    user = make_staff("olive", ops=True)
    # Every request's peer is the proxy; the stranger tries a new username each time.
    stranger = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9")
    for n in range(10):
        sign_in(stranger, f"guess{n}", "wrong password")
    assert sign_in(stranger, "guess10", "wrong password").status_code == 429
    assert {e.origin_ip for e in audit("staff_login_failed")} == {"203.0.113.9"}
    client = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.2")
    sign_in(client, "olive", PASSWORD, totp_now(user))
    assert reaches_admin(client)
    assert audit("staff_login")[0].origin_ip == "198.51.100.2"


def test_without_a_declared_proxy_a_forged_header_dodges_no_lock():
    stranger = Client(REMOTE_ADDR="192.0.2.1")
    for n in range(10):
        sign_in(stranger, f"guess{n}", "wrong password", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}")
    refused = sign_in(stranger, "guess10", "wrong password", HTTP_X_FORWARDED_FOR="203.0.113.99")
    assert refused.status_code == 429
    assert {e.origin_ip for e in audit("staff_login_failed")} == {"192.0.2.1"}


def test_a_password_typed_as_the_username_is_stored_and_logged_nowhere_yet_locks(caplog):
    caplog.set_level(logging.DEBUG)
    user = make_staff("olive", ops=True)
    for n in range(10):
        sign_in(Client(REMOTE_ADDR=f"192.0.2.{n + 1}"), TYPED_AS_USERNAME, "anything")
    refused = sign_in(Client(REMOTE_ADDR="198.51.100.1"), TYPED_AS_USERNAME, "anything")
    assert refused.status_code == 429  # counted under that name, from every address
    assert AccessAttempt.objects.count() == 11  # one an address, the refused try's too
    assert places_holding(TYPED_AS_USERNAME, caplog) == []
    # A count of its own: no real user is locked with it.
    client = Client(REMOTE_ADDR="198.51.100.2")
    sign_in(client, "olive", PASSWORD, totp_now(user))
    assert reaches_admin(client)


def test_a_staff_members_failures_are_kept_under_their_name_with_the_form_masked():
    make_staff("olive", ops=True)
    sign_in(Client(), "olive", "wrong password")
    attempt = AccessAttempt.objects.get()
    # Readable, so that a lock can be found and lifted (axes_reset_username olive).
    assert attempt.username == "olive"
    # What was typed into the username box is masked, as it may not be a username.
    assert "username=********************" in attempt.post_data.splitlines()
    assert places_holding("wrong password") == []


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


def test_the_sign_in_page_offers_no_device_list_or_challenge_for_one_authenticator():
    user = make_staff("olive", ops=True)
    page = sign_in(Client(), "olive", PASSWORD, "000000").content.decode()
    assert "Invalid token." in page
    assert 'name="otp_device"' not in page and 'name="otp_challenge"' not in page
    # With a second one, the page asks which.
    user.totpdevice_set.create(name="spare phone", confirmed=True)
    page = sign_in(Client(), "olive", PASSWORD, "000000").content.decode()
    assert 'name="otp_device"' in page and "spare phone" in page
    assert 'name="otp_challenge"' not in page
