"""Ops find a call by the caller's full number, typed in any common spelling, across the audit
log and the call sessions: matched exactly through the number's keyed digests, so that neither
the rows nor the pages nor the audit row of the search hold the number."""

import json
import re
from urllib.parse import parse_qs, unquote_plus, urlsplit

import pytest
from django.contrib.messages import get_messages
from django.test import Client, override_settings

from audit.models import AuditEvent
from calls.models import CallSession
from conftest import CALL_SID, CALLER, standalone, verified_client
from staff.admin_site import NUMBER_IN_ADDRESS, NUMBER_NOT_FOUND
from staff.auditing import masked_search

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


def searched(client, page: str, text: str, **filters: str):
    """The page a search for ``text``, posted from ``page``'s search box, ends on, and the
    redirect it took."""
    first = client.post(f"{page}search/", {"q": text, **filters})
    assert first.status_code == 302
    return client.get(first["Location"]), first["Location"]


def no_number_in(text: str) -> bool:
    """Whether ``text`` holds none of CALLER's digits, in any spelling with or without its
    country code: at most its last 2 digits, as masks keep them."""
    spread = r"[\s().-]*".join("5005550006")
    return not re.search(spread, unquote_plus(text))


def rows_text() -> str:
    return json.dumps(list(AuditEvent.objects.values("detail", "caller")))


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
    _, location = searched(ops_client, AUDIT, "+1 500 555 0006")
    viewed = AuditEvent.objects.get(event="record_viewed")
    assert viewed.detail["filters"]["q"].startswith("caller:test2:")
    # The page's export link carries the digests, not the number.
    export = ops_client.get(f"{AUDIT}export.csv?{urlsplit(location).query}")
    body = b"".join(export.streaming_content).decode()
    assert CALL_SID in body and "CA" + "ef" * 16 not in body
    assert no_number_in(rows_text())


@pytest.mark.parametrize("text", ["call 5005550006", "+1 500 555 0006 " + CALL_SID])
def test_a_number_among_other_words_is_masked_in_the_exports_row(ops_client, two_callers, text):
    export = ops_client.get(f"{AUDIT}export.csv", {"q": text})
    assert export.status_code == 200
    b"".join(export.streaming_content)
    exported = AuditEvent.objects.get(event="exported")
    assert exported.detail["filters"]["q"] in ("call ********06", f"**********06 {CALL_SID}")
    assert no_number_in(rows_text())


NUMBERS = [
    "+1 500 555 0006",
    "15005550006",
    "5005550006",
    "(500) 555-0006",
    "500.555.0006",
    "+1 500 555 00067",  # a digit too many
]


@pytest.mark.parametrize("page", [AUDIT, SESSIONS])
@pytest.mark.parametrize("text", NUMBERS)
def test_a_number_in_the_address_is_not_searched_nor_kept(ops_client, two_callers, page, text):
    response = ops_client.get(page, {"q": text, "outcome__exact": "success"})
    assert response.status_code == 302
    assert response["Location"] == f"{page}?outcome__exact=success"
    shown = ops_client.get(response["Location"])
    assert [str(m) for m in get_messages(shown.wsgi_request)] == [NUMBER_IN_ADDRESS]
    assert "q" not in shown.wsgi_request.GET
    assert no_number_in(rows_text()) and no_number_in(shown.content.decode())


@pytest.mark.parametrize("text", NUMBERS)
def test_an_export_asked_for_with_a_number_is_refused_and_not_recorded(
    ops_client, two_callers, text
):
    export = ops_client.get(f"{AUDIT}export.csv", {"q": text})
    assert export.status_code == 400 and no_number_in(export.content.decode())
    assert not AuditEvent.objects.filter(event="exported").exists()
    assert no_number_in(rows_text())


@pytest.mark.parametrize("page", [AUDIT, SESSIONS])
@pytest.mark.parametrize("text", NUMBERS[1:])
def test_a_number_the_box_cannot_find_is_not_sent_on(ops_client, two_callers, page, text):
    """Without its country code, or mistyped: no digests, and not an ordinary search either."""
    posted = ops_client.post(f"{page}search/", {"q": text})
    assert posted.status_code == 302 and posted["Location"] == page
    shown = ops_client.get(posted["Location"])
    assert [str(m) for m in get_messages(shown.wsgi_request)] == [NUMBER_NOT_FOUND]
    assert no_number_in(rows_text())


def test_any_other_text_is_searched_as_typed_with_the_lists_filters(ops_client, two_callers):
    page, location = searched(ops_client, AUDIT, CALL_SID, outcome__exact="info")
    assert parse_qs(urlsplit(location).query) == {"q": [CALL_SID], "outcome__exact": ["info"]}
    assert {row.call_sid for row in page.context["cl"].result_list} == {CALL_SID}


def test_the_search_box_posts_its_text_with_a_csrf_token(ops_user, two_callers):
    client = verified_client(ops_user)
    client.handler.enforce_csrf_checks = True
    page = client.get(SESSIONS).content.decode()
    assert f'method="post" action="{SESSIONS}search/"' in page
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token is not None
    assert client.post(f"{SESSIONS}search/", {"q": CALLER}).status_code == 403
    posted = client.post(f"{SESSIONS}search/", {"q": CALLER, "csrfmiddlewaretoken": token.group(1)})
    assert posted.status_code == 302 and "?q=caller%3Atest2%3A" in posted["Location"]
    assert client.get(f"{SESSIONS}search/").status_code == 405


def test_only_staff_who_may_view_the_list_may_search_it(ops_user, two_callers):
    anonymous = Client().post(f"{AUDIT}search/", {"q": CALLER})
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/admin/login/")
    assert no_number_in(anonymous["Location"])


@pytest.mark.parametrize(
    ("search", "kept"),
    [
        ("+1 (500) 555-0006", "**********06"),
        ("5005550006", "********06"),
        ("(500) 555-0006", "********06"),
        ("+1 500 555 00067", "**********67"),
        ("ring 500.555.0006 back", "ring ********06 back"),
        (CALL_SID, CALL_SID),
        ("CA" + "12345678" * 4, "CA" + "12345678" * 4),  # a CallSid, whole
        ("AC55500011 5005550006", "AC55500011 ********06"),  # an account number, whole
        ("verified 555 123", "verified 555 123"),  # 6 digits: no number
        ("verified 555 1234", "verified *****34"),
    ],
)
def test_masked_search_masks_every_run_of_7_or_more_digits(search, kept):
    assert masked_search(search) == kept


def test_every_callsid_and_account_in_the_audit_log_links_to_its_trail_or_account(
    ops_client, calls_made
):
    page = ops_client.get(AUDIT).content.decode()
    assert f'href="{AUDIT}?q={CALL_SID[:-2]}00">{CALL_SID[:-2]}00</a>' in page
    assert '<a href="/admin/accounts/account/?q=AC55500011">AC55500011</a>' in page
    sessions = ops_client.get(SESSIONS).content.decode()
    assert '<a href="/admin/accounts/account/?q=AC55500011">AC55500011</a>' in sessions
