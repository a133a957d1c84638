import contextlib
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Account
from accounts.resolvers import resolve
from audit.models import AuditEvent
from conftest import standalone

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/accounts/account/"


def add(client, **fields):
    data = {"number": "AC55500011", "balance": "20.00", "caller_numbers": "[]"}
    return client.post(f"{CHANGELIST}add/", {**data, **fields})


def password_inputs(page: str) -> dict[str, str]:
    return {
        name: tag
        for tag in re.findall(r"<input[^>]*>", page)
        if (name := (re.search(r'name="([^"]+)"', tag) or [None, ""])[1])
        in {"new_card_last4", "new_pin"}
    }


def test_adding_seals_the_credentials_and_the_account_resolves(admin_client):
    response = add(admin_client, new_card_last4="7391", new_pin="2846")
    assert response.status_code == 302
    account = Account.objects.get(number="AC55500011")
    assert account.balance == Decimal("20.00")
    assert account.card_last4.key_id == "test2"
    assert account.unseal("card_last4") == "7391" and account.check_pin("2846")
    assert resolve("7391", "2846", "+15005550006").account_number == "AC55500011"
    changed = AuditEvent.objects.get(event="record_changed")
    assert (changed.actor, changed.account_number, changed.detail["action"]) == (
        "root",
        "AC55500011",
        "added",
    )
    assert "credentials" in changed.detail["fields"]
    # One row for one change: the admin's LogEntry does not add a staff_change beside it.
    assert not AuditEvent.objects.filter(event="staff_change", channel="admin").exists()


def test_the_credential_inputs_are_password_inputs_never_filled(admin_client, demo_account):
    for url in (f"{CHANGELIST}add/", f"{CHANGELIST}{demo_account.pk}/change/"):
        inputs = password_inputs(admin_client.get(url).content.decode())
        assert set(inputs) == {"new_card_last4", "new_pin"}
        assert all('type="password"' in tag and "value=" not in tag for tag in inputs.values())


@pytest.mark.parametrize("bad", ["123", "12345", "١٢٣٤", "12a4", " 123", "12 4", "¹²³⁴"])
def test_anything_but_four_ascii_digits_is_refused_without_echo(admin_client, bad):
    response = add(admin_client, new_card_last4=bad, new_pin="2846")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Enter exactly 4 digits 0-9." in page
    # Neither value comes back, in an input or anywhere else.
    assert bad not in " ".join(re.findall(r"<input[^>]*>", page))
    assert not standalone("2846").search(page)
    assert not Account.objects.filter(number="AC55500011").exists()


def test_a_failed_form_never_sends_the_pin_back(admin_client):
    page = add(admin_client, new_card_last4="73", new_pin="2846").content.decode()
    assert all("value=" not in tag for tag in password_inputs(page).values())
    assert "2846" not in page


def test_both_or_neither_on_change(admin_client, demo_account):
    change = f"{CHANGELIST}{demo_account.pk}/change/"
    data = {"balance": "99.00", "caller_numbers": "[]"}
    page = admin_client.post(change, {**data, "new_pin": "2846"}).content.decode()
    assert "Enter both the card last 4 and the PIN, or neither." in page
    assert admin_client.post(change, data).status_code == 302
    demo_account.refresh_from_db()
    assert demo_account.balance == Decimal("99.00") and demo_account.check_pin("4321")
    assert (
        admin_client.post(change, {**data, "new_card_last4": "7391", "new_pin": "2846"}).status_code
        == 302
    )
    demo_account.refresh_from_db()
    assert demo_account.check_pin("2846") and demo_account.unseal("card_last4") == "7391"


def test_the_number_cannot_change_since_sealed_values_are_bound_to_it(admin_client, demo_account):
    change = f"{CHANGELIST}{demo_account.pk}/change/"
    admin_client.post(change, {"number": "AC99999999", "balance": "1.00", "caller_numbers": "[]"})
    demo_account.refresh_from_db()
    assert demo_account.number == "AC12345678"


def test_sealed_values_show_as_the_mask(admin_client, demo_account):
    page = admin_client.get(f"{CHANGELIST}{demo_account.pk}/change/").content.decode()
    assert "•••• (key test2)" in page
    assert demo_account.card_last4.token not in page and demo_account.pin_digest not in page


def test_ops_sees_an_account_without_any_input(ops_client, demo_account):
    page = ops_client.get(f"{CHANGELIST}{demo_account.pk}/change/").content.decode()
    assert password_inputs(page) == {}
    assert "•••• (key test2)" in page
    viewed = AuditEvent.objects.get(event="record_viewed")
    assert (viewed.actor, viewed.account_number) == ("olive", "AC12345678")


def test_credentials_are_hidden_from_error_reports(admin_client, rf):
    from accounts.admin import AccountAdmin

    request = rf.post(f"{CHANGELIST}add/", {"new_card_last4": "7391", "new_pin": "2846"})
    request.user = None
    from django.views.debug import SafeExceptionReporterFilter

    # The view fails without a user; only how it marked the request matters here.
    with contextlib.suppress(Exception):
        AccountAdmin(Account, None).changeform_view(request)
    cleansed = SafeExceptionReporterFilter().get_post_parameters(request)
    assert cleansed["new_card_last4"] == cleansed["new_pin"] == "********************"


def test_deleting_an_account_is_audited(admin_client, demo_account):
    page = f"/admin/accounts/account/{demo_account.pk}/delete/"
    assert admin_client.post(page, {"post": "yes"}).status_code == 302
    assert not Account.objects.exists()
    event = AuditEvent.objects.get(event="record_changed")
    assert (event.account_number, event.actor, event.detail["action"]) == (
        "AC12345678",
        "root",
        "deleted",
    )


def test_deleting_accounts_in_bulk_is_audited_per_account(admin_client, demo_account):
    other = Account(number="AC87654321")
    other.set_credentials("8264", "5937")
    other.save()
    ids = [str(pk) for pk in Account.objects.values_list("pk", flat=True)]
    admin_client.post(
        "/admin/accounts/account/",
        {"action": "delete_selected", "_selected_action": ids, "post": "yes"},
    )
    assert not Account.objects.exists()
    assert sorted(
        AuditEvent.objects.filter(event="record_changed").values_list("account_number", flat=True)
    ) == ["AC12345678", "AC87654321"]
    assert not AuditEvent.objects.filter(event="staff_change", channel="admin").exists()


def test_caller_numbers_are_masked_for_those_who_only_view(ops_client, admin_client, demo_account):
    demo_account.caller_numbers = ["+15005550006", "+442071838750"]
    demo_account.save()
    page = ops_client.get(f"{CHANGELIST}{demo_account.pk}/change/").content.decode()
    assert "**********06, ***********50" in page
    assert "5550006" not in page and "2071838750" not in page
    assert "5550006" not in ops_client.get(CHANGELIST).content.decode()
    # Someone who may change them edits them in full.
    page = admin_client.get(f"{CHANGELIST}{demo_account.pk}/change/").content.decode()
    assert 'name="caller_numbers"' in page and "+15005550006" in page


@pytest.mark.parametrize(
    "lookup", ["card_digest__startswith", "pin_digest__regex", "caller_numbers__contains"]
)
def test_digests_and_caller_numbers_cannot_be_read_back_through_a_lookup(
    ops_client, demo_account, lookup
):
    response = ops_client.get(CHANGELIST, {lookup: demo_account.card_digest[:6]})
    assert response.status_code == 400
    assert "AC12345678" not in response.content.decode()


def test_a_search_counts_only_what_it_found(admin_client, demo_account):
    with CaptureQueriesContext(connection) as queries:
        page = admin_client.get(CHANGELIST, {"q": "AC12345678"}).content.decode()
    assert "AC12345678" in page
    table = '"accounts_account"'
    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"] and table in q["sql"]]
    # The found rows' count, filtered by the number; never the whole table's as well.
    assert counts and all("WHERE" in sql for sql in counts)


@pytest.mark.django_db(transaction=True)
def test_accounts_deleted_in_bulk_stay_when_their_audit_row_cannot_be_written(
    admin_client, demo_account, monkeypatch
):
    from accounts import admin as accounts_admin

    other = Account(number="AC87654321")
    other.set_credentials("8264", "5937")
    other.save()
    record = accounts_admin.record_staff_action

    def failing_for_the_second(request, event, outcome, **detail):
        if detail.get("account_number") == "AC87654321":
            raise RuntimeError("audit log unavailable")
        record(request, event, outcome, **detail)

    monkeypatch.setattr(accounts_admin, "record_staff_action", failing_for_the_second)
    ids = [str(pk) for pk in Account.objects.values_list("pk", flat=True)]
    with pytest.raises(RuntimeError, match="audit log unavailable"):
        admin_client.post(
            CHANGELIST, {"action": "delete_selected", "_selected_action": ids, "post": "yes"}
        )
    # Deleted with their rows or not at all: the admin's LogEntries add no row for accounts.
    assert sorted(Account.objects.values_list("number", flat=True)) == ["AC12345678", "AC87654321"]
    assert not AuditEvent.objects.filter(event="record_changed").exists()
