import pytest

from audit.phones import e164, mask_phone


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
