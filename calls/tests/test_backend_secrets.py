"""With the HTTP resolver, every secret the service holds and a dump of its database after calls
recover no digit a caller typed: nothing sealed opens, no digest matches any 4-digit value."""

import contextlib
import hashlib
import hmac
import re
from itertools import product

import pytest
from django.apps import apps
from django.conf import settings
from django.test import override_settings

from accounts.models import Account
from conftest import BACKEND_SECRET, FakeCall, database_text, standalone
from keys.keyring import TOKEN_PATTERN, SealError, get_keyring
from keys.sealed import DigestField, SealedField

pytestmark = pytest.mark.django_db

# Digits the calls below typed, each a value a caller could have chosen.
TYPED = {"1234", "4321", "0000", "9999", "5678"}
FOUR_DIGITS = ["".join(d) for d in product("0123456789", repeat=4)]


def calls(twilio):
    """A verified call, a wrong PIN, an unknown card, and a call left after its card step
    (its ciphertext still at rest, as when the caller hangs up and no status comes)."""
    for n, (card, pin) in enumerate([("1234", "4321"), ("1234", "0000"), ("9999", "4321")]):
        call = FakeCall(twilio, call_sid=f"CA{n:032x}")
        call.start()
        call.card(card)
        call.pin(pin)
    left = FakeCall(twilio, call_sid=f"CA{9:032x}")
    left.start()
    left.card("5678")


def held_secrets() -> list[bytes]:
    """Every secret of the service's environment, as raw bytes and as each subkey it derives."""
    ring = get_keyring()
    found = [settings.SECRET_KEY.encode(), BACKEND_SECRET.encode()]
    for key in ring.every_key:
        found += [key.secret, key.subkey("digest"), key.subkey("seal")]
    return found


def recovered_digits(dump: str) -> set[str]:
    """Every 4-digit value some secret we hold maps to a value in the dump."""
    ring = get_keyring()
    hexes = set(re.findall(r"[0-9a-f]{32,}", dump))
    assert hexes, "the dump holds digests and MACs to try against"
    purposes = {
        f.digest_purpose
        for m in apps.get_models()
        for f in m._meta.get_fields()
        if isinstance(f, DigestField)
    }
    recovered = set()
    for digits in FOUR_DIGITS:
        candidates = [hashlib.sha256(digits.encode()).hexdigest()]
        for secret in held_secrets():
            candidates.append(hmac.new(secret, digits.encode(), hashlib.sha256).hexdigest())
            for purpose in purposes:
                message = f"{purpose}|{digits}".encode()
                candidates.append(hmac.new(secret, message, hashlib.sha256).hexdigest())
        for purpose in purposes:
            candidates += [d.partition(":")[2] for d in ring.digests(digits, purpose)]
        if any(candidate in hexes for candidate in candidates):
            recovered.add(digits)
    return recovered


def opened_tokens(dump: str) -> set[str]:
    """What every keyring token in the dump opens to, under every context the dump could give."""
    ring = get_keyring()
    records = set(re.findall(r"CA[0-9a-f]{32}|AC[0-9A-Za-z]{8}", dump))
    labels = [
        f.purpose()
        for m in apps.get_models()
        for f in m._meta.get_fields()
        if isinstance(f, SealedField)
    ]
    opened = set()
    for match in TOKEN_PATTERN.finditer(dump):
        for label, record in product(labels, records):
            with contextlib.suppress(SealError):
                opened.add(ring.open(match.group(), f"{label}:{record}"))
    return opened


def test_no_secret_of_the_service_recovers_a_digit_from_its_database(twilio, example_backend):
    with override_settings(**example_backend.settings()):
        calls(twilio)
    dump = database_text()
    assert "hpke1.x25519.b1." in dump  # the call left after its card step
    assert not Account.objects.exists()
    assert [d for d in TYPED if standalone(d).search(dump)] == []
    assert opened_tokens(dump) & TYPED == set()
    assert recovered_digits(dump) & TYPED == set()
    # What would open a ciphertext sealed to the backend is the backend's private key: neither
    # the service's settings nor its database hold one.
    values = [str(getattr(settings, name)) for name in dir(settings) if name.isupper()]
    assert not any("PRIVATE KEY" in value for value in [*values, dump])


def test_the_same_search_recovers_the_card_from_the_database_resolvers_tables(twilio, demo_account):
    # The control: with the accounts table of the database resolver, the service's own keys
    # find the card by trying 10,000 values, which is what the backend mode takes away.
    calls(twilio)
    dump = database_text()
    assert "1234" in recovered_digits(dump)
