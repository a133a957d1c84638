import pytest
from django.core.checks import run_checks
from django.test import override_settings

from calls.checks import check_session_times, check_twilio


def ids():
    return [message.id for message in check_session_times()]


def test_the_defaults_pass():
    assert ids() == []


@pytest.mark.parametrize(
    "setting", ["SECUREGATHER_SESSION_LIFETIME", "SECUREGATHER_SESSION_RETENTION"]
)
def test_a_zero_setting_is_an_error(setting):
    with override_settings(**{setting: 0}):
        assert ids() == ["calls.E001"]


def test_sessions_kept_shorter_than_a_call_lasts_are_an_error():
    with override_settings(SECUREGATHER_SESSION_LIFETIME=600, SECUREGATHER_SESSION_RETENTION=5):
        (message,) = check_session_times()
    assert message.id == "calls.E002"
    assert "would delete calls still in progress" in message.msg
    with override_settings(SECUREGATHER_SESSION_LIFETIME=600, SECUREGATHER_SESSION_RETENTION=600):
        assert ids() == []


def test_manage_py_check_runs_it():
    with override_settings(SECUREGATHER_SESSION_RETENTION=5):
        assert "calls.E002" in {message.id for message in run_checks()}


def test_configured_twilio_settings_pass():
    assert check_twilio() == []


@override_settings(TWILIO_AUTH_TOKEN="")
def test_e010_missing_auth_token():
    assert [error.id for error in check_twilio()] == ["securegather.E010"]


@pytest.mark.parametrize("url", ["voice.example.com", "ftp://x.example", "https://x.example/voice"])
def test_e011_public_url_must_be_an_origin(url):
    with override_settings(SECUREGATHER_PUBLIC_URL=url):
        assert [error.id for error in check_twilio()] == ["securegather.E011"]
