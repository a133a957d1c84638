"""No admin page, rendered for a superuser, shows a digit a caller typed: after real calls, every
changelist, add, change, history and delete page of every registered model, and the CSV export."""

import pytest

from accounts.models import Account
from conftest import CARD, PLANTED, admin_urls, standalone

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
