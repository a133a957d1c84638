import pytest
from django.core.management import call_command

from accounts.models import Account
from accounts.resolvers import resolve
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_seed_demo_creates_the_tutorial_account(capsys):
    call_command("seed_demo")
    assert "Created demo account AC12345678" in capsys.readouterr().out
    account = Account.objects.get()
    assert (account.number, str(account.balance)) == ("AC12345678", "12.55")
    assert resolve("1234", "4321", "").account_number == "AC12345678"


def test_seed_demo_is_idempotent(capsys):
    call_command("seed_demo")
    Account.objects.update(balance="1.00")
    call_command("seed_demo")
    assert "Reset demo account" in capsys.readouterr().out
    assert Account.objects.count() == 1
    assert str(Account.objects.get().balance) == "12.55"


def test_seed_demo_audits_the_credentials_it_sets(monkeypatch):
    monkeypatch.setattr("getpass.getuser", lambda: "deploy")
    call_command("seed_demo")
    call_command("seed_demo")
    rows = AuditEvent.objects.filter(event="record_changed").order_by("id")
    assert [(r.actor, r.channel, r.account_number, r.detail["action"]) for r in rows] == [
        ("deploy", "system", "AC12345678", "added"),
        ("deploy", "system", "AC12345678", "changed"),
    ]
    assert rows[1].detail["fields"] == ["balance", "credentials"]
