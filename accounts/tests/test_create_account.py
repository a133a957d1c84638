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


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["AC" + "9" * 40], "number:"),
        (["AC99", "--caller", "5551230000"], "caller_numbers:"),
    ],
)
def test_a_bad_account_is_refused_before_any_digit_is_asked(args, problem):
    with pytest.raises(CommandError, match=problem):
        run([], *args)  # getpass would raise StopIteration if it were asked
    assert not Account.objects.exists()


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
