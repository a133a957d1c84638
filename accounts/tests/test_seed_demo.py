import pytest
from django.core.management import call_command

from accounts.models import Account
from accounts.resolvers import Locked, resolve
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


def test_seed_demo_lifts_the_demo_accounts_lock_and_the_simulators_caller(capsys):
    from accounts.models import Lockout

    call_command("seed_demo")
    for _ in range(5):
        resolve("1234", "0000", "+15005550006")
    with pytest.raises(Locked):
        resolve("1234", "4321", "+15551112222")
    capsys.readouterr()
    call_command("seed_demo")
    out = capsys.readouterr().out
    assert "Lifted the lockout of the demo card." in out
    assert "Lifted the lockout of the demo caller." in out
    assert not Lockout.objects.exclude(locked_until=None).exists()
    assert resolve("1234", "4321", "+15005550006").account_number == "AC12345678"
    lifts = AuditEvent.objects.filter(event="unlocked", detail__reason="lifted")
    assert sorted(row.detail["scope"] for row in lifts) == ["caller", "card"]
    assert {row.detail["command"] for row in lifts} == {"seed_demo"}
