import pytest

from accounts.models import Lockout
from accounts.resolvers import resolve
from securegather.models import AuditEvent
from securegather.tests.staff import make_staff, verified_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff():
    # The admin asks for a second factor: a superuser signed in with password and TOTP.
    return verified_client(make_staff("ops", superuser=True))


def test_lockouts_are_listed_with_the_caller_masked(staff, demo_account):
    for _ in range(5):
        resolve("1234", "0000", "+15005550006")
    page = staff.get("/admin/accounts/lockout/").content.decode()
    assert "**********06" in page and "AC12345678" in page
    assert "+15005550006" not in page


def test_the_lift_action_unlocks_and_audits_the_staff_member(staff, demo_account):
    for _ in range(5):
        resolve("1234", "0000", "+15005550006")
    ids = [str(pk) for pk in Lockout.objects.values_list("pk", flat=True)]
    response = staff.post(
        "/admin/accounts/lockout/", {"action": "lift", "_selected_action": ids}, follow=True
    )
    assert "Lifted 2 lock(s)." in response.content.decode()
    assert not Lockout.objects.exclude(locked_until=None).exists()
    events = AuditEvent.objects.filter(event="unlocked")
    assert {(e.actor, e.channel) for e in events} == {("ops", "admin")}
    assert resolve("1234", "4321", "+15005550006").account_number == "AC12345678"


def test_a_lockout_cannot_be_deleted_or_edited_from_the_admin(staff, demo_account):
    for _ in range(5):
        resolve("1234", "0000", "+15005550006")
    row = Lockout.objects.first()
    assert staff.post(f"/admin/accounts/lockout/{row.pk}/delete/").status_code == 403
    assert staff.post(f"/admin/accounts/lockout/{row.pk}/change/", {}).status_code == 403
    assert Lockout.objects.count() == 2
