from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import Account
from accounts.resolvers import resolve
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def run(answers, *args):
    with mock.patch("getpass.getpass", autospec=True, side_effect=answers) as getpass:
        call_command("create_account", *args)
    return getpass


def test_create_account_asks_without_echo_and_seals(capsys):
    getpass = run(
        ["8264", "8264", "5937", "5937"], "AC99", "--balance", "3.50", "--caller", "+15551230000"
    )
    assert getpass.call_count == 4
    out = capsys.readouterr().out
    assert "Created account AC99" in out and "8264" not in out and "5937" not in out
    account = Account.objects.get(number="AC99")
    assert account.caller_numbers == ["+15551230000"]
    assert resolve("8264", "5937", "+15551230000").balance == account.balance


@pytest.mark.parametrize("answers", [["826", "826"], ["8264", "8265"], ["8264", "8264", "59a7"]])
def test_bad_entries_are_refused_without_echo(answers):
    with pytest.raises(CommandError) as excinfo:
        run(answers, "AC99")
    assert not any(a in str(excinfo.value) for a in answers)
    assert not Account.objects.exists()


def test_an_existing_account_is_not_overwritten(demo_account):
    with pytest.raises(CommandError, match="already exists"):
        run([], "AC12345678")


NUMBER_RULE = (
    "An account number is 2 capital letters then up to 30 capital letters or digits, "
    "e.g. AC87654321."
)


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["AC" + "9" * 40], NUMBER_RULE),
        (["12345"], NUMBER_RULE),
        (["ac99"], NUMBER_RULE),
        (
            ["AC99", "--caller", "+15551230000", "--caller", "5551230000"],
            "Caller number 2 is not a phone number with its country code, e.g. +1 555 123 4567.",
        ),
        (
            ["AC99", "--balance", "1.005"],
            "A balance is an amount such as 12.55, at most 2 digits after the point.",
        ),
        (
            ["AC99", "--balance", "NaN"],
            "A balance is an amount such as 12.55, at most 2 digits after the point.",
        ),
    ],
)
def test_a_bad_account_is_refused_in_plain_words_before_any_digit_is_asked(args, problem):
    with pytest.raises(CommandError) as refused:
        run([], *args)  # getpass would raise StopIteration if it were asked
    assert str(refused.value) == problem
    assert "5551230000" not in str(refused.value)
    assert not Account.objects.exists()


def test_caller_numbers_are_taken_in_any_common_spelling():
    run(["8264", "8264", "5937", "5937"], "AC99", "--caller", "+1 (555) 123-0000")
    assert Account.objects.get().caller_numbers == ["+15551230000"]


def test_a_bad_pin_says_what_it_must_be():
    with pytest.raises(CommandError) as refused:
        run(["8264", "8264", "59a7"], "AC99")
    assert str(refused.value) == "The PIN is exactly 4 digits 0-9."


def test_a_created_account_is_audited_as_the_os_user(monkeypatch):
    monkeypatch.setattr("getpass.getuser", lambda: "deploy")
    run(["8264", "8264", "5937", "5937"], "AC99", "--balance", "3.50")
    row = AuditEvent.objects.get(event="record_changed")
    assert (row.actor, row.channel, row.outcome, row.account_number) == (
        "deploy",
        "system",
        "success",
        "AC99",
    )
    assert row.detail == {
        "model": "accounts.Account",
        "action": "added",
        "fields": ["balance", "caller_numbers", "number", "credentials"],
    }


def test_a_refused_account_writes_no_row():
    with pytest.raises(CommandError):
        run(["8264", "8265"], "AC99")
    assert not AuditEvent.objects.filter(event="record_changed").exists()
