"""Each list page of calls, accounts, lockouts and the audit log, and each record's page, writes a
record_viewed row naming the staff member, the model, and the list's filters or the record."""

import pytest

from accounts.models import Lockout
from accounts.resolvers import resolve
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def records(call, demo_account):
    call.start()
    call.card("7391")
    for _ in range(5):
        resolve("1234", "0000", "+15005550006")  # locks the caller and the account


def views() -> list[tuple[str, str, str, dict]]:
    rows = AuditEvent.objects.filter(event="record_viewed").order_by("id")
    return [(row.actor, row.channel, row.outcome, row.detail) for row in rows]


@pytest.mark.parametrize(
    ("path", "model", "query"),
    [
        ("/admin/calls/callsession/", "calls.CallSession", {"state": "awaiting_pin"}),
        ("/admin/accounts/account/", "accounts.Account", {"q": "AC12345678"}),
        ("/admin/accounts/lockout/", "accounts.Lockout", {"scope__exact": "caller"}),
        ("/admin/audit/auditevent/", "audit.AuditEvent", {"outcome": "info"}),
    ],
)
def test_a_list_page_is_recorded_with_its_filters(ops_client, records, path, model, query):
    response = ops_client.get(path, query, REMOTE_ADDR="10.1.2.3")
    assert response.status_code == 200
    assert views() == [("olive", "admin", "info", {"model": model, "filters": query})]
    assert AuditEvent.objects.get(event="record_viewed").origin_ip == "10.1.2.3"
    ops_client.get(path)
    assert views()[-1][3] == {"model": model, "filters": {}}


def test_a_lockout_page_is_recorded_with_its_id(ops_client, records):
    row = Lockout.objects.get(scope="caller")
    assert ops_client.get(f"/admin/accounts/lockout/{row.pk}/change/").status_code == 200
    assert views() == [
        ("olive", "admin", "info", {"model": "accounts.Lockout", "object_id": str(row.pk)})
    ]


def test_a_refused_filter_or_a_missing_record_shows_nothing_and_is_not_recorded(
    ops_client, records
):
    assert ops_client.get("/admin/accounts/lockout/", {"key__startswith": "+1"}).status_code == 400
    assert (
        ops_client.get("/admin/calls/callsession/", {"created_at__gte": "never"}).status_code == 302
    )
    assert ops_client.get("/admin/accounts/lockout/999/change/").status_code == 302
    assert views() == []


def test_an_action_posted_to_a_list_is_not_a_view(admin_client, records):
    ids = [str(pk) for pk in Lockout.objects.values_list("pk", flat=True)]
    admin_client.post("/admin/accounts/lockout/", {"action": "lift", "_selected_action": ids})
    assert AuditEvent.objects.filter(event="unlocked").count() == 2
    assert views() == []
