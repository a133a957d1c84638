import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from securegather.checks import check_keyring, check_twilio
from securegather.keyring import TUTORIAL_SAMPLE_KEY


def ids(errors):
    return [error.id for error in errors]


def test_configured_project_passes():
    assert check_keyring() == [] and check_twilio() == []


@pytest.mark.parametrize("keys", ["", "k1", "k1:abc", "k1:" + "11" * 31])
def test_e001_unusable_keyring(keys):
    with override_settings(SECUREGATHER_KEYS=keys):
        errors = check_keyring()
    assert ids(errors) == ["securegather.E001"]
    assert "11" * 8 not in errors[0].msg


@override_settings(SECUREGATHER_KEYS=f"tut:{TUTORIAL_SAMPLE_KEY}", DEBUG=False)
def test_e002_tutorial_sample_key_in_production():
    assert ids(check_keyring()) == ["securegather.E002"]


@override_settings(SECUREGATHER_KEYS=f"tut:{TUTORIAL_SAMPLE_KEY}", DEBUG=True)
def test_tutorial_sample_key_is_tolerated_under_debug():
    assert check_keyring() == []


@override_settings(TWILIO_AUTH_TOKEN="")
def test_e010_missing_auth_token():
    assert ids(check_twilio()) == ["securegather.E010"]


@pytest.mark.parametrize("url", ["voice.example.com", "ftp://x.example", "https://x.example/voice"])
def test_e011_public_url_must_be_an_origin(url):
    with override_settings(SECUREGATHER_PUBLIC_URL=url):
        assert ids(check_twilio()) == ["securegather.E011"]


@override_settings(SECUREGATHER_KEYS="")
def test_manage_check_fails_on_a_missing_keyring():
    with pytest.raises(SystemCheckError, match=r"securegather\.E001"):
        call_command("check")
