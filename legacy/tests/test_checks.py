"""System checks for SECUREGATHER_LEGACY_KEY and SECUREGATHER_API_TOKEN."""

from __future__ import annotations

import pytest

from keys.keyring import TUTORIAL_SAMPLE_KEY
from legacy.checks import check_legacy_key


def ids(settings, key: str, token: str = "a-token", debug: bool = False) -> list[str]:  # noqa: S107
    settings.SECUREGATHER_LEGACY_KEY, settings.SECUREGATHER_API_TOKEN = key, token
    settings.DEBUG = debug
    return [message.id for message in check_legacy_key()]


def test_no_legacy_key_means_the_api_is_off_and_nothing_to_check(settings):
    assert ids(settings, "", token="") == []


def test_a_64_hex_key_with_a_token_passes(settings):
    assert ids(settings, "ab" * 32) == []


@pytest.mark.parametrize("key", ["ab" * 31, "ab" * 33, "zz" * 32, "secret words"])
def test_a_key_that_is_not_64_hex_characters_is_e001(settings, key):
    assert ids(settings, key) == ["legacy.E001"]


def test_e001_does_not_print_the_key(settings):
    settings.SECUREGATHER_LEGACY_KEY = "cd" * 31
    assert "cd" * 31 not in str(check_legacy_key()[0])


def test_the_tutorials_sample_key_is_e002_outside_debug(settings):
    assert ids(settings, TUTORIAL_SAMPLE_KEY) == ["legacy.E002"]
    assert ids(settings, TUTORIAL_SAMPLE_KEY.upper()) == ["legacy.E002"]


def test_the_tutorials_sample_key_is_allowed_under_debug(settings):
    assert ids(settings, TUTORIAL_SAMPLE_KEY, debug=True) == []


def test_an_open_api_outside_debug_is_w001(settings):
    assert ids(settings, "ab" * 32, token="") == ["legacy.W001"]
    assert ids(settings, "ab" * 32, token="", debug=True) == []
