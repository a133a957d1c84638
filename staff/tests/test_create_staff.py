import io
from unittest import mock

import pytest
import segno
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import AuditEvent
from conftest import PASSWORD, totp_now

pytestmark = pytest.mark.django_db

# What segno's compact drawing puts for each pair of rows: light above, light below.
HALVES = {"█": (1, 1), "▀": (1, 0), "▄": (0, 1), " ": (0, 0)}


def create_staff(answers, *args) -> tuple[str, mock.Mock]:
    out = io.StringIO()
    with mock.patch("getpass.getpass", autospec=True, side_effect=answers) as getpass:
        call_command("create_staff", *args, stdout=out)
    return out.getvalue(), getpass


def modules(drawing: list[str]) -> list[list[int]]:
    """The drawing's modules read back, 1 for dark, its last half-row (the border's) dropped."""
    rows: list[list[int]] = []
    for line in drawing:
        pairs = [HALVES[char] for char in line]
        rows.append([1 - upper for upper, _ in pairs])
        rows.append([1 - lower for _, lower in pairs])
    return rows


def test_an_ops_member_is_made_in_one_command_and_reaches_the_admin(monkeypatch):
    monkeypatch.setenv("LOGNAME", "operator")
    out, getpass = create_staff([PASSWORD, PASSWORD], "dana", "--group", "ops")
    assert getpass.call_count == 2 and PASSWORD not in out
    user = User.objects.get(username="dana")
    assert (user.is_staff, user.is_superuser) == (True, False)
    assert [group.name for group in user.groups.all()] == ["ops"]
    device = TOTPDevice.objects.get(user=user)
    assert device.confirmed
    lines = out.splitlines()
    assert lines[:2] == [
        "Staff user dana created in group ops.",
        "TOTP device 'authenticator' enrolled: scan the code with an authenticator app, or type "
        "in the URI below it.",
    ]
    assert lines[-1] == device.config_url
    client = Client()
    client.post(
        "/admin/login/", {"username": "dana", "password": PASSWORD, "otp_token": totp_now(user)}
    )
    assert client.get("/admin/accounts/account/").status_code == 200  # ops may view
    assert client.get("/admin/accounts/account/add/").status_code == 403  # and change nothing


def test_the_qr_code_drawn_is_the_uri():
    out, _ = create_staff([PASSWORD, PASSWORD], "dana")
    uri = out.splitlines()[-1]
    drawing = out.splitlines()[2:-1]
    expected = [list(row) for row in segno.make(uri, error="m").matrix_iter(border=4)]
    assert modules(drawing)[: len(expected)] == expected


def test_each_step_is_audited_as_the_os_user(monkeypatch):
    monkeypatch.setenv("LOGNAME", "operator")
    create_staff([PASSWORD, PASSWORD], "dana")
    rows = AuditEvent.objects.filter(event__in=["staff_change", "record_changed"]).order_by("id")
    assert {row.actor for row in rows} == {"operator"}
    assert [(row.event, row.detail["action"]) for row in rows] == [
        ("staff_change", "added"),
        ("staff_change", "changed"),
        ("record_changed", "enrolled"),
    ]
    assert rows[1].detail["fields"] == ["groups"] and rows[1].detail["group"] == "ops"
    assert all(PASSWORD not in str(row.detail) for row in rows)


@pytest.mark.parametrize(
    ("answers", "error"),
    [
        (["short"], "This password is too short. It must contain at least 12 characters."),
        ([PASSWORD, PASSWORD + "!"], "The two passwords differ."),
    ],
)
def test_a_refused_password_makes_nothing(answers, error):
    with pytest.raises(CommandError) as refused:
        create_staff(answers, "dana")
    assert str(refused.value).startswith(error)
    assert "short" not in str(refused.value).replace("too short", "")
    assert not User.objects.filter(username="dana").exists()
    assert not AuditEvent.objects.exists()


def test_an_existing_user_is_pointed_at_enrol_totp(ops_user):
    with pytest.raises(CommandError, match=r"already exists: `manage.py enrol_totp"):
        create_staff([PASSWORD, PASSWORD], ops_user.username)


def test_an_unknown_group_makes_nothing():
    with pytest.raises(CommandError) as refused:
        create_staff([PASSWORD, PASSWORD], "dana", "--group", "auditors")
    assert (
        str(refused.value) == "No group 'auditors': use 'ops', or add the group in the admin first."
    )
    assert not User.objects.filter(username="dana").exists()


def test_another_existing_group_is_joined():
    Group.objects.create(name="supervisors")
    create_staff([PASSWORD, PASSWORD], "dana", "--group", "supervisors")
    assert [g.name for g in User.objects.get(username="dana").groups.all()] == ["supervisors"]


def test_a_failed_enrolment_leaves_no_user(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("device table unwritable")

    monkeypatch.setattr("staff.members.enrol_totp", broken)
    with pytest.raises(RuntimeError):
        create_staff([PASSWORD, PASSWORD], "dana")
    assert not User.objects.filter(username="dana").exists()
    assert not AuditEvent.objects.exists()
