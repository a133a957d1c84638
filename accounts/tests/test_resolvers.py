from decimal import Decimal
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from accounts.models import Account
from accounts.resolvers import DatabaseResolver, Resolution, resolve

pytestmark = pytest.mark.django_db


def make(number, card, pin, callers=()):
    account = Account(number=number, balance=Decimal("5.00"), caller_numbers=list(callers))
    account.set_credentials(card, pin)
    account.save()
    return account


def test_right_card_and_pin_resolve(demo_account):
    assert resolve("1234", "4321", "+15005550006") == Resolution("AC12345678", Decimal("12.55"))


@pytest.mark.parametrize(("card", "pin"), [("1234", "0000"), ("0000", "4321"), ("4321", "1234")])
def test_wrong_digits_do_not_resolve(demo_account, card, pin):
    assert resolve(card, pin, "+15005550006") is None


def test_shared_card_digits_are_told_apart_by_pin():
    make("AC1", "8264", "1111")
    make("AC2", "8264", "2222")
    assert resolve("8264", "2222", "").account_number == "AC2"
    assert resolve("8264", "1111", "").account_number == "AC1"


def test_equal_pins_on_two_accounts_have_different_digests():
    assert make("AC1", "8264", "1111").pin_digest != make("AC2", "8264", "1111").pin_digest


def test_caller_numbers_restrict_resolution():
    make("AC1", "8264", "5937", callers=["+15551230000"])
    assert resolve("8264", "5937", "+15551230000").account_number == "AC1"
    assert resolve("8264", "5937", "+15559999999") is None


def test_unknown_card_does_the_same_keyed_work_as_a_wrong_pin(demo_account):
    with mock.patch.object(Account, "check_pin", autospec=True, return_value=False) as check:
        DatabaseResolver().resolve("9999", "4321", "")
        assert check.call_count == 1
        DatabaseResolver().resolve("1234", "0000", "")
        assert check.call_count == 2


def test_the_default_resolver_reads_the_card_accounts_once_without_a_savepoint(demo_account):
    # resolve() reads them for the lockout counters and hands them to the resolver.
    with CaptureQueriesContext(connection) as queries:
        assert resolve("1234", "4321", "").account_number == "AC12345678"
    sql = [query["sql"] for query in queries.captured_queries]
    assert sum('FROM "accounts_account"' in statement for statement in sql) == 1
    assert not any(statement.startswith("SAVEPOINT") for statement in sql)


def test_account_made_under_an_old_key_still_resolves(demo_account):
    with override_settings(SECUREGATHER_KEYS="new:" + "33" * 32 + ",test2:" + "22" * 32):
        assert resolve("1234", "4321", "").account_number == "AC12345678"
    with override_settings(SECUREGATHER_KEYS="new:" + "33" * 32):
        assert resolve("1234", "4321", "") is None


@pytest.mark.parametrize("stored", ["+15551230000", ["+1555"], [15551230000], {"a": 1}])
def test_caller_numbers_must_be_a_list_of_e164_numbers(stored):
    account = Account(number="AC1", caller_numbers=stored)
    account.set_credentials("8264", "5937")
    with pytest.raises(ValidationError, match=r"list of E\.164 numbers"):
        account.full_clean()


def test_a_string_stored_as_caller_numbers_restricts_to_nothing():
    # Stored around validation (a raw update): a substring of it must not pass as a caller.
    make("AC1", "8264", "5937")
    Account.objects.update(caller_numbers="+15551230000")
    assert resolve("8264", "5937", "") is None
    assert resolve("8264", "5937", "+1555123") is None
