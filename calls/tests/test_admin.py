import pytest

from audit.models import AuditEvent
from calls.models import CallSession

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/calls/callsession/"


@pytest.fixture
def session_mid_call(call, demo_account):
    call.start()
    call.card("7391")  # sealed on the session until the PIN arrives
    return CallSession.objects.get()


def test_sealed_digits_show_as_the_mask_and_key_id(admin_client, session_mid_call):
    page = admin_client.get(f"{CHANGELIST}{session_mid_call.pk}/change/").content.decode()
    assert "•••• (key test2)" in page
    assert "7391" not in page
    assert session_mid_call.card.token not in page
    assert "**********06" in page and "+15005550006" not in page


def test_changelist_masks_and_searches_by_call_sid(admin_client, session_mid_call):
    page = admin_client.get(CHANGELIST, {"q": session_mid_call.call_sid}).content.decode()
    assert session_mid_call.call_sid in page and "•••• (key test2)" in page
    page = admin_client.get(CHANGELIST, {"q": "CA" + "0" * 32}).content.decode()
    assert session_mid_call.call_sid not in page


def test_viewing_a_call_is_audited_with_the_staff_member(ops_client, session_mid_call):
    response = ops_client.get(f"{CHANGELIST}{session_mid_call.pk}/change/", REMOTE_ADDR="10.1.2.3")
    assert response.status_code == 200
    viewed = AuditEvent.objects.get(event="record_viewed")
    assert (viewed.actor, viewed.channel, viewed.call_sid, viewed.caller) == (
        "olive",
        "admin",
        session_mid_call.call_sid,
        "**********06",
    )
    assert (viewed.origin_ip, viewed.detail) == ("10.1.2.3", {"model": "calls.CallSession"})


def test_the_page_lists_the_calls_audit_trail(ops_client, session_mid_call):
    page = ops_client.get(f"{CHANGELIST}{session_mid_call.pk}/change/").content.decode()
    assert "call_started (info)" in page and "card_entered (success)" in page
    assert f"/admin/audit/auditevent/?q={session_mid_call.call_sid}" in page


def test_the_audit_trail_holds_only_that_calls_rows(ops_client, session_mid_call):
    AuditEvent.record("locked_out", "failure", call_sid="CA" + "9" * 32, scope="caller")
    AuditEvent.record("staff_login", "success", actor="olive", channel="admin")
    page = ops_client.get(f"{CHANGELIST}{session_mid_call.pk}/change/").content.decode()
    assert "card_entered (success)" in page
    assert "locked_out" not in page and "staff_login" not in page


def test_a_missing_call_is_not_audited_as_viewed(ops_client, db):
    assert ops_client.get(f"{CHANGELIST}999/change/").status_code == 302
    assert not AuditEvent.objects.filter(event="record_viewed").exists()


def test_nobody_edits_or_deletes_a_call_session(admin_client, session_mid_call):
    change = f"{CHANGELIST}{session_mid_call.pk}/change/"
    assert admin_client.post(change, {"state": "finished"}).status_code == 403
    assert admin_client.post(f"{CHANGELIST}{session_mid_call.pk}/delete/").status_code == 403
    assert admin_client.get(f"{CHANGELIST}add/").status_code == 403
    assert CallSession.objects.get().state == "awaiting_pin"


@pytest.mark.parametrize(
    ("lookup", "prefix"),
    [
        ("caller__startswith", lambda s: s.caller[:6]),
        ("caller", lambda s: s.caller),
        ("card__startswith", lambda s: s.card.token[:8]),
        ("account_sid__regex", lambda s: "^AC"),
    ],
)
def test_masked_and_sealed_columns_cannot_be_read_back_through_a_lookup(
    ops_client, session_mid_call, lookup, prefix
):
    response = ops_client.get(CHANGELIST, {lookup: prefix(session_mid_call)})
    assert response.status_code == 400
    assert session_mid_call.call_sid not in response.content.decode()
    # The page's own filter still narrows the list.
    page = ops_client.get(CHANGELIST, {"state__exact": "awaiting_pin"}).content.decode()
    assert session_mid_call.call_sid in page
