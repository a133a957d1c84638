import pytest
from django.test import override_settings

from accounts.checks import check_lockout


def ids():
    return [message.id for message in check_lockout()]


def test_the_defaults_pass():
    assert ids() == []


@pytest.mark.parametrize(
    "setting",
    [
        "SECUREGATHER_LOCKOUT_FAILURES",
        "SECUREGATHER_LOCKOUT_WINDOW",
        "SECUREGATHER_LOCKOUT_DURATION",
        "SECUREGATHER_LOCKOUT_CEILING",
        "SECUREGATHER_LOCKOUT_CEILING_WINDOW",
        "SECUREGATHER_GUESSING_FAILURES",
        "SECUREGATHER_GUESSING_WINDOW",
    ],
)
def test_a_zero_setting_is_an_error(setting):
    with override_settings(**{setting: 0}):
        assert ids() == ["accounts.E001"]


@pytest.mark.parametrize(("failures", "duration"), [(11, 1800), (5, 1799)])
def test_a_lockout_weaker_than_pci_is_a_warning(failures, duration):
    with override_settings(
        SECUREGATHER_LOCKOUT_FAILURES=failures, SECUREGATHER_LOCKOUT_DURATION=duration
    ):
        assert ids() == ["accounts.W001"]


@override_settings(SECUREGATHER_LOCKOUT_FAILURES=10, SECUREGATHER_LOCKOUT_DURATION=1800)
def test_the_pci_limits_themselves_pass():
    assert ids() == []


@pytest.mark.parametrize(("ceiling", "window"), [(11, 30 * 86400), (10, 30 * 86400 - 1)])
def test_a_ceiling_that_lets_more_than_10_checks_in_30_days_is_a_warning(ceiling, window):
    with override_settings(
        SECUREGATHER_LOCKOUT_CEILING=ceiling, SECUREGATHER_LOCKOUT_CEILING_WINDOW=window
    ):
        assert ids() == ["accounts.W002"]
