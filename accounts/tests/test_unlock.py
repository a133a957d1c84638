import pytest
from django.core.management import CommandError, call_command

from accounts.models import Lockout
from accounts.resolvers import resolve
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def lock_out(caller="+15005550006"):
    for _ in range(5):
        resolve("1234", "0000", caller)


def test_unlock_a_caller_number(demo_account, capsys, monkeypatch):
    monkeypatch.setattr("getpass.getuser", lambda: "deploy")
    lock_out()
    call_command("unlock", "+15005550006", "--by", "alice")
    assert "Lifted: caller +15005550006" in capsys.readouterr().out
    row = Lockout.objects.get(scope="caller")
    assert (row.locked_until, row.failures) == (None, [])
    assert Lockout.objects.get(scope="card").locked_until is not None  # only what was named
    event = AuditEvent.objects.get(event="unlocked")
    assert (event.actor, event.caller) == ("alice", "*" * 10 + "06")
    # Who the operator named, and the OS user who ran the command.
    assert event.detail == {"scope": "caller", "reason": "lifted", "os_user": "deploy"}


def test_unlock_an_account_number_lets_its_owner_in(demo_account, capsys):
    lock_out()
    call_command("unlock", "AC12345678")
    assert "Lifted: card AC12345678" in capsys.readouterr().out
    assert resolve("1234", "4321", "+15551112222").account_number == "AC12345678"
    assert AuditEvent.objects.get(event="unlocked").actor == "system"


def test_unlock_of_something_never_locked_is_an_error(db):
    with pytest.raises(CommandError, match="No lock or failed attempt"):
        call_command("unlock", "+15551234567")
    assert not AuditEvent.objects.filter(event="unlocked").exists()


@pytest.mark.parametrize(
    "spelling", ["+1 500 555 0006", "+1 (500) 555-0006", "0015005550006", " +15005550006 "]
)
def test_unlock_reads_any_common_spelling_of_a_number_as_e164(demo_account, capsys, spelling):
    lock_out()
    call_command("unlock", spelling)
    assert "Lifted: caller +15005550006" in capsys.readouterr().out
    assert Lockout.objects.get(scope="caller").locked_until is None


def test_unlock_of_an_unknown_target_says_what_it_takes(db):
    with pytest.raises(CommandError) as failed:
        call_command("unlock", "+1 555 999 0001")
    assert str(failed.value) == (
        "No lock or failed attempt is recorded for +15559990001: give a caller number with its "
        "country code (+1 555 123 4567) or an account number (AC12345678)."
    )
