"""Ops find a call by the caller's full number, typed in any common spelling, across the audit
log and the call sessions: matched exactly through the number's keyed digests, so that neither
the rows nor the pages nor the audit row of the search hold the number."""

from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import override_settings

from audit.models import AuditEvent
from calls.models import CallSession
from conftest import CALL_SID, CALLER, standalone

pytestmark = pytest.mark.django_db

AUDIT = "/admin/audit/auditevent/"
SESSIONS = "/admin/calls/callsession/"
SPELLINGS = ["+1 500 555 0006", "+1 (500) 555-0006", "+15005550006", "001 500 555 0006"]
OTHER = "+15005550077"
KEY1, KEY2 = "11" * 32, "22" * 32


def made_call(call, caller: str, sid: str) -> None:
    call.caller, call.call_sid = caller, sid
    call.start()
    call.card("1234")
    call.status()


@pytest.fixture
def two_callers(call):
    made_call(call, CALLER, CALL_SID)
    made_call(call, OTHER, "CA" + "ef" * 16)


def searched(client, page: str, text: str):
    """The page a search for ``text`` ends on, and the redirect it took."""
    first = client.get(page, {"q": text})
    assert first.status_code == 302
    return client.get(first["Location"]), first["Location"]


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_each_spelling_finds_the_callers_audit_rows_and_no_one_elses(
    ops_client, two_callers, spelling
):
    page, location = searched(ops_client, AUDIT, spelling)
    shown = list(page.context["cl"].result_list)
    assert {row.call_sid for row in shown} == {CALL_SID}
    assert len(shown) == AuditEvent.objects.filter(call_sid=CALL_SID).count() > 2
    # The address, the search box and every link carry digests, never the number.
    query = parse_qs(urlsplit(location).query)["q"][0]
    assert query.startswith("caller:test2:") and ",test1:" in query
    for text in (location, page.content.decode()):
        assert not standalone(CALLER).search(text) and "5005550006" not in text
        assert "500 555 0006" not in text and "(500) 555-0006" not in text


def test_the_same_search_finds_the_callers_call_sessions(ops_client, two_callers):
    page, _ = searched(ops_client, SESSIONS, "+1 (500) 555-0006")
    assert [s.call_sid for s in page.context["cl"].result_list] == [CALL_SID]
    assert CallSession.objects.get(call_sid=CALL_SID).caller_digest.startswith("test2:")


def test_rows_written_under_a_key_since_retired_are_found(ops_client, call):
    with override_settings(SECUREGATHER_KEYS=f"old:{KEY1}"):
        made_call(call, CALLER, CALL_SID)
    with override_settings(SECUREGATHER_KEYS=f"new:{KEY2},old:{KEY1}:retired"):
        made_call(call, CALLER, "CA" + "cd" * 16)
        page, _ = searched(ops_client, AUDIT, "+15005550006")
        found = {row.call_sid for row in page.context["cl"].result_list}
    assert found == {CALL_SID, "CA" + "cd" * 16}


def test_callsid_account_and_username_searches_are_unchanged(ops_client, two_callers):
    page = ops_client.get(AUDIT, {"q": CALL_SID})
    assert page.status_code == 200
    assert {row.call_sid for row in page.context["cl"].result_list} == {CALL_SID}
    page = ops_client.get(SESSIONS, {"q": CALL_SID})
    assert [s.call_sid for s in page.context["cl"].result_list] == [CALL_SID]


@pytest.mark.parametrize("search", ["caller:", "caller:nonsense", "caller:" + "k:ab," * 40])
def test_a_malformed_caller_search_finds_nothing(ops_client, two_callers, search):
    page = ops_client.get(AUDIT, {"q": search})
    assert page.status_code == 200 and list(page.context["cl"].result_list) == []


def test_the_search_is_recorded_with_the_number_masked(ops_client, two_callers):
    searched(ops_client, AUDIT, "+1 500 555 0006")
    # An export asked for with the number itself (a hand-made address) masks it too.
    export = ops_client.get(f"{AUDIT}export.csv", {"q": "+1 500 555 0006"})
    body = b"".join(export.streaming_content).decode()
    assert CALL_SID in body and "CA" + "ef" * 16 not in body
    viewed = AuditEvent.objects.get(event="record_viewed")
    assert viewed.detail["filters"]["q"].startswith("caller:test2:")
    exported = AuditEvent.objects.get(event="exported")
    assert exported.detail["filters"]["q"] == "**********06"


def test_every_callsid_and_account_in_the_audit_log_links_to_its_trail_or_account(
    ops_client, calls_made
):
    page = ops_client.get(AUDIT).content.decode()
    assert f'href="{AUDIT}?q={CALL_SID[:-2]}00">{CALL_SID[:-2]}00</a>' in page
    assert '<a href="/admin/accounts/account/?q=AC55500011">AC55500011</a>' in page
    sessions = ops_client.get(SESSIONS).content.decode()
    assert '<a href="/admin/accounts/account/?q=AC55500011">AC55500011</a>' in sessions
