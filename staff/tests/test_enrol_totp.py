from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import AuditEvent
from conftest import PASSWORD, totp_now

pytestmark = pytest.mark.django_db


def enrol(capsys, *args):
    call_command("enrol_totp", *args)
    return capsys.readouterr()


def test_createsuperuser_then_enrol_reaches_the_admin(capsys, monkeypatch):
    monkeypatch.setenv("LOGNAME", "operator")  # getpass.getuser() reads it first
    User.objects.create_superuser("root", "root@example.com", PASSWORD)
    out = enrol(capsys, "root").out
    uri = next(line for line in out.splitlines() if line.startswith("otpauth://"))
    parts = urlsplit(uri)
    assert (parts.netloc, parts.path) == ("totp", "/SecureGather%3Aroot")
    assert parse_qs(parts.query)["issuer"] == ["SecureGather"]
    device = TOTPDevice.objects.get(user__username="root")
    assert device.confirmed
    client = Client()
    client.post(
        "/admin/login/",
        {"username": "root", "password": PASSWORD, "otp_token": totp_now(device.user)},
    )
    assert client.get("/admin/").status_code == 200
    enrolled = AuditEvent.objects.get(event="record_changed")
    assert enrolled.detail == {"model": "otp_totp.TOTPDevice", "action": "enrolled", "user": "root"}
    assert enrolled.actor == "operator"  # the OS user who ran the command


def test_a_second_device_needs_replace(capsys):
    User.objects.create_superuser("root", "root@example.com", PASSWORD)
    enrol(capsys, "root")
    first = TOTPDevice.objects.get().key
    with pytest.raises(CommandError, match="already has a TOTP device; --replace"):
        enrol(capsys, "root")
    enrol(capsys, "root", "--replace")
    assert TOTPDevice.objects.get().key != first


def test_unknown_user_error_says_how_to_add_a_staff_user_too(capsys):
    # Most staff are ops, not superusers: the admin's Users page is where they are added.
    with pytest.raises(CommandError) as raised:
        enrol(capsys, "ghost")
    message = str(raised.value)
    assert message.startswith("No user 'ghost'")
    assert "Users → Add user" in message and "`manage.py createsuperuser`" in message


def test_non_staff_users_are_warned(capsys):
    User.objects.create_user("pat", password=PASSWORD)
    assert "pat is not staff" in enrol(capsys, "pat").err
