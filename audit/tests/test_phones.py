import pytest
from django.test import override_settings

from audit.phones import caller_digest, caller_digests, e164, mask_phone


@pytest.mark.parametrize(
    "spelling",
    [
        "+15551234567",
        "+1 555 123 4567",
        "+1 (555) 123-4567",
        "+1.555.123.4567",
        " 001 555 1234567 ",
    ],
)
def test_common_spellings_read_as_one_e164_number(spelling):
    assert e164(spelling) == "+15551234567"


@pytest.mark.parametrize(
    "text", ["", "anonymous", "client:alice", "sip:bob@example.com", "(555) 123-4567", "+1 55", "+"]
)
def test_what_names_no_number_is_none(text):
    assert e164(text) is None


def test_a_masked_number_keeps_its_last_two_digits_only():
    assert mask_phone("+15551234567") == "**********67"
    assert mask_phone("12") == "**"


KEY1, KEY2 = "11" * 32, "22" * 32


def test_every_spelling_of_a_number_has_one_keyed_digest():
    digests = {caller_digest(s) for s in ["+15551234567", "+1 555 123 4567", "+1 (555) 123-4567"]}
    (digest,) = digests
    assert digest is not None and digest.startswith("test2:")  # the primary's
    assert "5551234567" not in digest
    assert caller_digest("+15551234568") != digest


@pytest.mark.parametrize("text", ["", "anonymous", "client:alice", "+266696687"])
def test_a_from_that_names_no_caller_has_no_digest(text):
    # "+266696687" is ANONYMOUS on a keypad: Twilio's withheld number, shared by every caller.
    assert caller_digest(text) is None


def test_a_search_finds_digests_made_under_a_key_since_retired():
    with override_settings(SECUREGATHER_KEYS=f"old:{KEY1}"):
        written = caller_digest("+15551234567")
    with override_settings(SECUREGATHER_KEYS=f"new:{KEY2},old:{KEY1}:retired"):
        searched = caller_digests("+1 555 123 4567")
        assert searched[0] == caller_digest("+15551234567")  # the primary's first
    assert written in searched and written.startswith("old:")
    with override_settings(SECUREGATHER_KEYS=f"new:{KEY2}"):
        assert written not in caller_digests("+15551234567")  # once dropped, gone
