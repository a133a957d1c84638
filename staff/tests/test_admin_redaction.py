"""No admin page, rendered for a superuser, shows a digit a caller typed: after real calls, every
changelist, add, change, history and delete page of every registered model, and the CSV export.
Nor does any page show a caller's full number, for a superuser or for ops: the dashboard, the
refusals of pages ops' role lacks, and the results of a search by that number included."""

import re
from urllib.parse import urlencode

import pytest

from accounts.models import Account
from conftest import CALLER, CARD, PLANTED, admin_urls, standalone

pytestmark = pytest.mark.django_db


def test_no_admin_page_or_export_shows_a_typed_digit(admin_client, calls_made, plaintext):
    seen = 0
    for url in [*admin_urls(), "/admin/audit/auditevent/export.csv"]:
        response = admin_client.get(url)
        assert response.status_code in {200, 403}, url
        body = (
            b"".join(response.streaming_content) if response.streaming else response.content
        ).decode()
        found = [digits for digits in PLANTED if standalone(digits).search(body)]
        assert found == [], f"{url} shows {found}"
        seen += response.status_code == 200
    assert seen > 40
    plaintext.assert_absent(*PLANTED)


def test_the_sweep_would_see_a_digit_that_leaked(admin_client, calls_made):
    # The scan is real: a digit in a field the admin shows is found.
    Account.objects.filter(number="AC55500011").update(caller_numbers=[CARD])
    pages = [admin_client.get(url).content.decode() for url in admin_urls()]
    assert any(standalone(CARD).search(page) for page in pages)


SEARCHES = [
    f"/admin/{page}/?{urlencode({'q': spelling})}"
    for page in ("audit/auditevent", "calls/callsession")
    for spelling in ("+1 500 555 0006", "+1 (500) 555-0006", CALLER)
]


def shows_the_number(body: str) -> bool:
    national = CALLER[2:]  # "5005550006", in any grouping
    spread = r"[\s().-]*".join(national)
    # With its country code or without: "+15005550006", "+1 (500) 555-0006", "500 555 0006".
    pattern = rf"(?<![0-9A-Za-z])(?:\+?1[\s().-]*)?{spread}(?![0-9A-Za-z])"
    return bool(re.search(pattern, body))


def test_no_page_shows_a_callers_full_number(admin_client, ops_client, calls_made):
    refused = 0
    for client in (admin_client, ops_client):
        for url in [*admin_urls(), "/admin/audit/auditevent/export.csv", *SEARCHES]:
            response = client.get(url, follow=True)
            # 404: an app's index ops' role has nothing in, as Django answers it.
            assert response.status_code in {200, 403, 404}, url
            refused += response.status_code == 403
            body = (
                b"".join(response.streaming_content) if response.streaming else response.content
            ).decode()
            assert not shows_the_number(body), url
            found = [digits for digits in PLANTED if standalone(digits).search(body)]
            assert found == [], f"{url} shows {found}"
    assert refused > 10  # ops' refusals were scanned too


def test_the_number_scan_would_see_a_number_that_leaked():
    assert shows_the_number("<td>+1 (500) 555-0006</td>") and shows_the_number(CALLER)
    assert not shows_the_number("**********06") and not shows_the_number("test2:a5005550006f")
