"""Callers' phone numbers: read in any common spelling as E.164, masked for display, and
digested (keyed) for an exact search that stores and shows no number."""

from __future__ import annotations

import phonenumbers

from keys.keyring import get_keyring

# What Twilio puts in From when the number is withheld: ANONYMOUS, RESTRICTED, BLOCKED, UNKNOWN
# and UNAVAILABLE spelled on a keypad. They look like numbers but name no one.
WITHHELD = frozenset({"+266696687", "+7378742833", "+2562533", "+8656696", "+86282452253"})


def e164(text: str) -> str | None:
    """``text`` as an E.164 number ("+15551234567"), or None when it names no possible number.

    Takes what ops paste or type: "+1 555 123 4567", "+1 (555) 123-4567", "+15551234567",
    "0044 20 7946 0958". A number must carry its country code: without a region of the
    service's own, "(555) 123-4567" could be anyone's.
    """
    text = text.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    if not text.startswith("+"):
        return None
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return None
    # Possible, not valid: a number plan's newest ranges can be newer than the library's data,
    # and an exact search for a real caller must not miss them.
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def mask_phone(number: str) -> str:
    """A caller number masked to its last 2 digits: enough to correlate, not to dial."""
    if len(number) <= 2:
        return "*" * len(number)
    return "*" * (len(number) - 2) + number[-2:]


# The purpose of a caller number's keyed digest (keys.keyring.Keyring.digest): its dotted path.
CALLER_PURPOSE = "audit.phones.caller"


def caller_digest(number: str) -> str | None:
    """The keyed digest of a caller's number in E.164 under the primary key, or None for a
    From that names no number (a client, "anonymous", a withheld number)."""
    normal = e164(number)
    if normal is None or normal in WITHHELD:
        return None
    return get_keyring().digest(normal, CALLER_PURPOSE)


def caller_digests(text: str) -> list[str]:
    """The digests a row of the number ``text`` (any common spelling) may carry: under every key
    of the ring, retired ones included, since audit rows are never digested again. Empty when
    ``text`` is no number."""
    normal = e164(text)
    if normal is None:
        return []
    return get_keyring().digests(normal, CALLER_PURPOSE, retired=True)
