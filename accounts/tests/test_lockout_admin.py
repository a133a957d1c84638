import pytest
from django.contrib.auth.models import Permission

from accounts import lockout
from accounts.models import Lockout
from accounts.resolvers import resolve
from audit.models import AuditEvent
from conftest import make_staff, verified_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff():
    # The admin asks for a second factor: a superuser signed in with password and TOTP.
    return verified_client(make_staff("ops", superuser=True))


def test_lockouts_are_listed_with_the_caller_masked_and_the_cards_account(staff, demo_account):
    for _ in range(5):
        resolve("1234", "0000", "+15005550006")
    page = staff.get("/admin/accounts/lockout/").content.decode()
    assert "**********06" in page and "AC12345678" in page
    assert "+15005550006" not in page
    # The card's digest is shortened, never shown whole.
    assert lockout.card_key("1234") not in page


def test_locked_now_and_times_with_their_zone(staff, demo_account, clock):
    for _ in range(4):
        resolve("1234", "0000", "+15005550006")
    page = staff.get("/admin/accounts/lockout/").content.decode()
    assert page.count('alt="False"') == 2 and 'alt="True"' not in page
    resolve("1234", "0000", "+15005550006")
    page = staff.get("/admin/accounts/lockout/").content.decode()
    assert page.count('alt="True"') == 2
    assert "2026-11-28 09:30:00 UTC (UTC+0000)" in page


@pytest.mark.parametrize(
    "search", ["+15005550006", "+1 500 555 0006", "+1 (500) 555-0006", "001-500-555-0006"]
)
def test_a_caller_number_is_found_in_any_common_spelling(staff, demo_account, search):
    for _ in range(5):
        resolve("9999", "0000", "+15005550006")
        resolve("1234", "0000", "+15557770000")
    page = staff.get("/admin/accounts/lockout/", {"q": search}).content.decode()
    assert "**********06" in page and "**********00" not in page
    # Only the search box holds what was typed; the page shows no number in full.
    assert "+15005550006" not in page.replace(f'value="{search}"', "")


def test_an_account_number_finds_its_cards_counter(staff, demo_account):
    for _ in range(5):
        resolve("9999", "0000", "+15005550006")
        resolve("1234", "0000", "+15557770000")
    page = staff.get("/admin/accounts/lockout/", {"q": "AC12345678"}).content.decode()
    assert lockout.card_key("1234")[:11] in page
    assert lockout.card_key("9999")[:11] not in page and "**********06" not in page


def test_a_prefix_finds_nothing(staff, demo_account):
    for _ in range(5):
        resolve("1234", "0000", "+15005550006")
    page = staff.get("/admin/accounts/lockout/", {"q": "+1500"}).content.decode()
    assert "**********06" not in page and "0 lockouts" in page


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


def test_ops_see_lockouts_but_cannot_lift_them(demo_account):
    client = verified_client(make_staff("watcher", ops=True))
    for _ in range(5):
        resolve("1234", "0000", "+15005550006")
    page = client.get("/admin/accounts/lockout/")
    assert page.status_code == 200 and "AC12345678" in page.content.decode()
    assert 'value="lift"' not in page.content.decode()
    ids = [str(pk) for pk in Lockout.objects.values_list("pk", flat=True)]
    client.post("/admin/accounts/lockout/", {"action": "lift", "_selected_action": ids})
    assert Lockout.objects.exclude(locked_until=None).count() == 2
    assert not AuditEvent.objects.filter(event="unlocked").exists()


def test_the_lift_permission_alone_lets_a_supervisor_lift(demo_account):
    supervisor = make_staff("supervisor")
    supervisor.user_permissions.add(
        Permission.objects.get(codename="view_lockout"),
        Permission.objects.get(codename="lift_lockout"),
    )
    client = verified_client(supervisor)
    for _ in range(5):
        resolve("1234", "0000", "+15005550006")
    ids = [str(pk) for pk in Lockout.objects.values_list("pk", flat=True)]
    client.post("/admin/accounts/lockout/", {"action": "lift", "_selected_action": ids})
    assert not Lockout.objects.exclude(locked_until=None).exists()
    assert AuditEvent.objects.filter(event="unlocked", actor="supervisor").count() == 2


def test_a_lockout_page_shows_the_caller_masked(staff, demo_account):
    for _ in range(5):
        resolve("1234", "0000", "+15005550006")
    row = Lockout.objects.get(scope="caller")
    page = staff.get(f"/admin/accounts/lockout/{row.pk}/change/").content.decode()
    assert "**********06" in page and "+15005550006" not in page


@pytest.mark.parametrize("prefix", ["+1500", "+1999"])
def test_a_locked_number_cannot_be_read_back_through_a_lookup(staff, demo_account, prefix):
    for _ in range(5):
        resolve("1234", "0000", "+15005550006")
    # Refused alike whether the number starts so or not: the answer tells nothing.
    response = staff.get("/admin/accounts/lockout/", {"key__startswith": prefix})
    assert response.status_code == 400
    assert "**********06" not in response.content.decode()
    page = staff.get("/admin/accounts/lockout/", {"scope__exact": "caller"}).content.decode()
    assert "**********06" in page and "AC12345678" not in page


def test_a_lift_by_a_role_without_the_permission_is_refused_and_audited(demo_account):
    client = verified_client(make_staff("watcher", ops=True))
    for _ in range(5):
        resolve("1234", "0000", "+15005550006")
    ids = [str(pk) for pk in Lockout.objects.values_list("pk", flat=True)]
    response = client.post("/admin/accounts/lockout/", {"action": "lift", "_selected_action": ids})
    assert response.status_code == 403
    assert Lockout.objects.exclude(locked_until=None).count() == 2
    row = AuditEvent.objects.get(event="unauthorized")
    assert (row.actor, row.channel, row.outcome) == ("watcher", "admin", "failure")
    assert row.detail == {"path": "/admin/accounts/lockout/", "method": "POST"}


def test_a_searched_caller_number_is_masked_in_the_pages_audit_row(staff, demo_account):
    for _ in range(5):
        resolve("9999", "0000", "+15005550006")
    staff.get("/admin/accounts/lockout/", {"q": "+1 500 555 0006", "scope__exact": "caller"})
    row = AuditEvent.objects.filter(event="record_viewed").first()  # the newest
    assert row.detail["filters"] == {"q": "**********06", "scope__exact": "caller"}
    assert row.detail["model"] == "accounts.Lockout"
    staff.get("/admin/accounts/lockout/", {"q": "AC12345678"})
    row = AuditEvent.objects.filter(event="record_viewed").first()  # the newest
    assert row.detail["filters"] == {"q": "AC12345678"}
