"""The ciphertext format of Twilio's tutorial, so its Functions can call SecureGather unchanged.

The tutorial's ``AES.encrypt`` sends ``hex(nonce ‖ ciphertext ‖ tag)``: AES-256-GCM, a 12-byte
nonce, a 16-byte tag, no associated data, under the 32 bytes of the 64-hex-character
``AES_SECRET`` (``SECUREGATHER_LEGACY_KEY`` here). Without associated data nothing binds a value to
its purpose or its call; the API that accepts this format makes up for it by taking each
ciphertext once.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

NONCE_BYTES = 12
TAG_BYTES = 16
KEY_BYTES = 32
# 4 keypad digits make 32 bytes (64 hex characters); anything much longer is not a keypad entry,
# and refusing it before decoding keeps a large body from costing work.
MAX_HEX_CHARS = 256


class LegacyKeyError(Exception):
    """SECUREGATHER_LEGACY_KEY is not 64 hex characters. Never includes the key."""


class UnreadableCiphertext(Exception):
    """Not hex, too short or long, or not sealed under the legacy key. Says no more."""


def parse_key(text: str) -> bytes:
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        raise LegacyKeyError("SECUREGATHER_LEGACY_KEY is not hexadecimal") from None
    if len(key) != KEY_BYTES:
        raise LegacyKeyError(f"SECUREGATHER_LEGACY_KEY is {len(key)} bytes, not {KEY_BYTES}")
    return key


def legacy_key() -> bytes | None:
    """The configured legacy key, or None when the tutorial-compatible API is off."""
    text = settings.SECUREGATHER_LEGACY_KEY
    return parse_key(text) if text else None


def decode(ciphertext: object) -> bytes:
    """The raw bytes of a hex ciphertext. Case does not matter: "AB" and "ab" are one value."""
    if not isinstance(ciphertext, str) or len(ciphertext) > MAX_HEX_CHARS:
        raise UnreadableCiphertext
    try:
        raw = bytes.fromhex(ciphertext)
    except ValueError:
        raise UnreadableCiphertext from None
    if len(raw) < NONCE_BYTES + TAG_BYTES:
        raise UnreadableCiphertext
    return raw


def open_raw(raw: bytes, key: bytes) -> str:
    """Decrypt what :func:`decode` returned, as the tutorial's decrypt meant to (key from hex)."""
    try:
        plaintext = AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], None)
        return plaintext.decode()
    except (InvalidTag, UnicodeDecodeError):
        raise UnreadableCiphertext from None
