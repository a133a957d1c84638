import io
from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from django.utils import timezone

from conftest import manage, manage_with, server_env
from keys.keyring import get_keyring
from keys.models import KeyRecord

pytestmark = pytest.mark.django_db


def keyring_status() -> str:
    out = io.StringIO()
    call_command("keyring_status", stdout=out)
    return out.getvalue()


@pytest.fixture
def demo(request):
    get_keyring.cache_clear()  # a fresh process: its first seal records the keys
    return request.getfixturevalue("demo_account")


def line(output: str, start: str) -> str:
    """The output line starting with ``start``, its runs of spaces made one."""
    lines = (" ".join(text.split()) for text in output.splitlines())
    return next(text for text in lines if text.startswith(start))


def test_every_sealed_and_digest_column_is_counted_per_key(demo, call):
    call.start()
    call.card("1234")
    output = keyring_status()
    assert line(output, "accounts.Account.card_last4") == "accounts.Account.card_last4 test2: 1"
    assert line(output, "accounts.Account.pin_digest").endswith("test2: 1")
    assert line(output, "calls.CallSession.card").endswith("test2: 1")
    assert line(output, "calls.CallSession.pin").endswith("empty")
    assert "NOT IN RING" not in output


def test_keys_show_role_first_use_and_seals(demo):
    output = keyring_status()
    primary = line(output, "test2")
    assert "primary" in primary and "0 days ago" in primary and "2 seals" in primary
    assert "never used" not in line(output, "test1")  # recorded with the ring on first use


def failing_keyring_status() -> tuple[str, str]:
    """The output of a run that must fail, and the one line it fails with."""
    out = io.StringIO()
    with pytest.raises(CommandError) as failed:
        call_command("keyring_status", stdout=out)
    return out.getvalue(), str(failed.value)


def test_ids_the_ring_lacks_are_flagged_with_the_fix_and_fail(demo):
    keys = "k3:" + "33" * 32 + ",test2:" + "22" * 32 + ":retired"
    with override_settings(SECUREGATHER_KEYS=keys):
        output, error = failing_keyring_status()
    assert "retired" in line(output, "test2")
    assert line(output, "accounts.Account.pin ").endswith("test2: 1 (retired)")
    assert "4 values sit under key ids the ring cannot use" in output
    assert error == ("Values sit under key ids the ring cannot use (securegather.E008): see above.")
    with override_settings(SECUREGATHER_KEYS="k3:" + "33" * 32):
        output, _ = failing_keyring_status()
        assert "test2: 1 (NOT IN RING)" in line(output, "accounts.Account.card_last4")


def test_a_changed_key_is_flagged_and_fails(demo):
    KeyRecord.objects.filter(kid="test1").update(check_value="0" * 16)
    output, error = failing_keyring_status()
    assert "BYTES CHANGED" in line(output, "test1")
    assert error == (
        "Key id(s) test1 hold other bytes than when first used (securegather.E007): put the "
        "original bytes back under each id."
    )


def test_an_unusable_ring_fails(demo):
    with override_settings(SECUREGATHER_KEYS="k1:nothex"):
        output, error = failing_keyring_status()
    assert output == ""
    assert error.startswith("The keyring is unusable: ")


def test_a_sound_ring_exits_zero_as_a_process(tmp_path):
    assert manage(tmp_path, "migrate", "--verbosity", "0").returncode == 0
    run = manage(tmp_path, "keyring_status")
    assert (run.returncode, run.stderr) == (0, "")
    run = manage_with(server_env(tmp_path, SECUREGATHER_KEYS="k1:nothex"), "keyring_status")
    assert run.returncode == 1 and run.stderr.startswith("CommandError: The keyring is unusable")


@override_settings(SECUREGATHER_KEY_MAX_SEALS=1)
def test_cryptoperiod_warnings(demo):
    with time_machine.travel(timezone.now() + timedelta(days=400)):
        output = keyring_status()
    assert "past SECUREGATHER_KEY_MAX_SEALS (1)" in output
    assert "Primary key is 400 days old" in output


def test_values_sealed_to_the_backend_are_counted_apart_and_pass(call, backend_keys):
    from keys.checks import check_keys_in_database

    with override_settings(**backend_keys.settings()):
        call.start()
        call.card("1234")
        output = keyring_status()
    assert line(output, "Resolver:") == "Resolver: accounts.resolvers.HttpResolver"
    assert line(output, "calls.CallSession.card") == "calls.CallSession.card empty"
    assert line(output, "calls.CallSession.card sealed") == (
        "calls.CallSession.card sealed to backend key b1: 1"
    )
    assert "NOT IN RING" not in output
    assert [m.id for m in check_keys_in_database(databases=["default"])] == []
