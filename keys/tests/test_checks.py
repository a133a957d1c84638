from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings
from django.utils import timezone

from keys.checks import check_keyring, check_keys_in_database
from keys.keyring import TUTORIAL_SAMPLE_KEY, get_keyring
from keys.models import KeyRecord


def ids(errors):
    return [error.id for error in errors]


def test_configured_keyring_passes():
    assert check_keyring() == []


@pytest.mark.parametrize("keys", ["", " , ", "k1:" + "11" * 32 + ":retired"])
def test_e001_missing_keys(keys):
    with override_settings(SECUREGATHER_KEYS=keys):
        assert ids(check_keyring()) == ["securegather.E001"]


@pytest.mark.parametrize(
    "keys", ["k1", "k1:abc", "bad id:" + "11" * 32, "k1:" + "11" * 32 + ":old", "k1:" + "zz" * 32]
)
def test_e003_malformed_entry(keys):
    with override_settings(SECUREGATHER_KEYS=keys):
        errors = check_keyring()
    assert ids(errors) == ["securegather.E003"]
    assert "11" * 8 not in errors[0].msg


@pytest.mark.parametrize("keys", ["k1:" + "11" * 31, "k1:" + "11" * 33])
def test_e004_key_not_32_bytes(keys):
    with override_settings(SECUREGATHER_KEYS=keys):
        errors = check_keyring()
    assert ids(errors) == ["securegather.E004"]
    assert "11" * 8 not in errors[0].msg


def test_e005_duplicate_key_id():
    with override_settings(SECUREGATHER_KEYS="k1:" + "11" * 32 + ",k1:" + "22" * 32 + ":retired"):
        assert ids(check_keyring()) == ["securegather.E005"]


def test_e006_unreadable_keys_file(tmp_path):
    with override_settings(SECUREGATHER_KEYS_FILE=str(tmp_path / "missing")):
        assert ids(check_keyring()) == ["securegather.E006"]


def test_every_problem_is_reported_at_once():
    keys = "k1,k2:" + "11" * 31 + ",k3:" + "11" * 32 + ",k3:" + "22" * 32
    with override_settings(SECUREGATHER_KEYS=keys):
        assert ids(check_keyring()) == [
            "securegather.E003",
            "securegather.E004",
            "securegather.E005",
        ]


@pytest.mark.parametrize("flag", ["", ":retired"])
def test_e002_tutorial_sample_key_in_production(flag):
    keys = f"k1:{'11' * 32},tut:{TUTORIAL_SAMPLE_KEY}{flag}"
    with override_settings(SECUREGATHER_KEYS=keys, DEBUG=False):
        assert ids(check_keyring()) == ["securegather.E002"]


@override_settings(SECUREGATHER_KEYS=f"tut:{TUTORIAL_SAMPLE_KEY}", DEBUG=True)
def test_tutorial_sample_key_is_tolerated_under_debug():
    assert check_keyring() == []


@override_settings(SECUREGATHER_KEYS="")
def test_manage_check_fails_on_a_missing_keyring():
    with pytest.raises(SystemCheckError, match=r"securegather\.E001"):
        call_command("check")


@pytest.fixture
def demo(request):
    """The demo account, sealed by a fresh process's keyring: its first seal records the keys."""
    get_keyring.cache_clear()
    return request.getfixturevalue("demo_account")


def database_checks():
    return ids(check_keys_in_database(databases=["default"]))


@pytest.mark.django_db
def test_database_checks_pass_on_a_rotated_database(demo):
    assert database_checks() == []


def test_database_checks_run_only_when_asked_for_a_database():
    assert check_keys_in_database(databases=None) == []


@pytest.mark.django_db
def test_e007_key_id_whose_bytes_changed(demo):
    assert KeyRecord.objects.filter(kid="test2").exists()  # recorded on first use
    with override_settings(SECUREGATHER_KEYS="test2:" + "33" * 32 + ",test1:" + "11" * 32):
        assert "securegather.E007" in database_checks()


@pytest.mark.django_db
def test_e008_values_under_a_key_the_ring_lacks(demo):
    with override_settings(SECUREGATHER_KEYS="k3:" + "33" * 32):
        errors = check_keys_in_database(databases=["default"])
    assert ids(errors) == ["securegather.E008"]
    assert "accounts.Account.card_last4: 1 under 'test2'" in errors[0].msg
    assert "rotate_keys" in errors[0].hint


@pytest.mark.django_db
def test_e008_counts_a_retired_key_as_lacking(demo):
    keys = "k3:" + "33" * 32 + ",test2:" + "22" * 32 + ":retired"
    with override_settings(SECUREGATHER_KEYS=keys):
        assert ids(check_keys_in_database(databases=["default"])) == ["securegather.E008"]


@pytest.mark.django_db
@override_settings(SECUREGATHER_KEY_MAX_SEALS=3)
def test_w001_primary_key_past_its_seal_limit(demo):
    get_keyring().unrecorded_seals = 0
    KeyRecord.objects.filter(kid="test2").update(sealed_count=4)
    assert database_checks() == ["securegather.W001"]


@pytest.mark.django_db
def test_w002_primary_key_past_its_age_limit(demo):
    assert database_checks() == []
    with time_machine.travel(timezone.now() + timedelta(days=366)):
        assert database_checks() == ["securegather.W002"]
    with (
        override_settings(SECUREGATHER_KEY_MAX_AGE_DAYS=30),
        time_machine.travel(timezone.now() + timedelta(days=31)),
    ):
        assert database_checks() == ["securegather.W002"]


@pytest.mark.django_db
def test_database_checks_wait_for_migrate(monkeypatch):
    from django.db import connection

    monkeypatch.setattr(connection.introspection, "table_names", lambda *a, **k: [])
    with override_settings(SECUREGATHER_KEYS="k3:" + "33" * 32):
        assert database_checks() == []


@pytest.mark.django_db
def test_database_checks_skip_columns_not_migrated_yet(demo, monkeypatch):
    from django.db import connection

    tables = connection.introspection.table_names()
    monkeypatch.setattr(
        connection.introspection,
        "table_names",
        lambda *a, **k: [t for t in tables if t != "accounts_account"],
    )
    with override_settings(SECUREGATHER_KEYS="k3:" + "33" * 32):
        assert database_checks() == []


@pytest.mark.django_db
def test_manage_check_with_database_reports_values_without_key(demo):
    with (
        override_settings(SECUREGATHER_KEYS="k3:" + "33" * 32),
        pytest.raises(SystemCheckError, match=r"securegather\.E008"),
    ):
        call_command("check", "--database", "default")
