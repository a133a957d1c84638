"""The keyring: AES-256-GCM sealing and keyed digests under named keys.

A keyring entry is ``kid:64-hex-chars``; entries are comma (or newline) separated and the first is
primary: it seals and digests everything new. The others only open what they sealed before, so
values keep opening while a rotation moves them to the primary.

Token format (text, safe for a CharField): ``sg1:<kid>:<hex(nonce ‖ ciphertext ‖ tag)>``.
The version and key id are bound into the associated data as well, so a token whose header was
edited does not open.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

TOKEN_VERSION = "sg1"  # noqa: S105 (a format tag, not a secret)
KEY_BYTES = 32
NONCE_BYTES = 12  # 96-bit random nonces: at most 2**32 seals per key (NIST SP 800-38D §8.3)
KID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,32}")
# The key printed in Twilio's tutorial: public, so never a real key.
TUTORIAL_SAMPLE_KEY = "a154eb4c759711bc2538a7cc021e9e9f17dd8aa63151c62ca28a82a4a404203d"


class KeyringError(Exception):
    """The keyring configuration is unusable. Messages never include key material."""


class SealError(Exception):
    """A token could not be opened: unknown key, wrong context, or tampered. Says no more."""


@dataclass(frozen=True)
class Key:
    kid: str
    secret: bytes = field(repr=False)

    def subkey(self, label: str) -> bytes:
        """A 32-byte key for one purpose, so sealing and digests never share key bytes."""
        return HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=f"securegather:{label}".encode()
        ).derive(self.secret)

    @property
    def check_value(self) -> str:
        """A keyed digest of a fixed label: tells whether an id still means the same bytes."""
        return hmac.new(self.subkey("check"), b"key-check-value", hashlib.sha256).hexdigest()[:16]


def parse_entries(text: str) -> list[Key]:
    """Parse ``kid:hex`` entries. Raises KeyringError naming the entry by position, not content."""
    keys: list[Key] = []
    seen: set[str] = set()
    entries = [e.strip() for e in re.split(r"[,\n]", text) if e.strip()]
    for position, entry in enumerate(entries, start=1):
        kid, sep, hexkey = entry.partition(":")
        if not sep or not KID_PATTERN.fullmatch(kid):
            raise KeyringError(f"entry {position} is not 'kid:hex' (kid: letters, digits, _ or -)")
        try:
            secret = bytes.fromhex(hexkey)
        except ValueError:
            raise KeyringError(f"key {kid!r} is not hexadecimal") from None
        if len(secret) != KEY_BYTES:
            raise KeyringError(f"key {kid!r} is {len(secret)} bytes, not {KEY_BYTES}")
        if kid in seen:
            raise KeyringError(f"key id {kid!r} appears twice")
        seen.add(kid)
        keys.append(Key(kid, secret))
    return keys


def new_key_entry(kid: str | None = None) -> str:
    """A fresh ``kid:hex`` entry from the OS's CSPRNG."""
    kid = kid or f"k{date.today():%Y%m%d}{secrets.token_hex(2)}"
    if not KID_PATTERN.fullmatch(kid):
        raise KeyringError("a key id is 1-32 letters, digits, _ or -")
    return f"{kid}:{secrets.token_hex(KEY_BYTES)}"


class Keyring:
    def __init__(self, keys: list[Key]) -> None:
        if not keys:
            raise KeyringError(
                "no keys configured: set SECUREGATHER_KEYS or SECUREGATHER_KEYS_FILE"
            )
        self.keys = {key.kid: key for key in keys}
        self.primary = keys[0]
        # AESGCM objects and digest subkeys are derived once per process, not per request.
        self._aead = {key.kid: AESGCM(key.subkey("seal")) for key in keys}
        self._digest_keys = {key.kid: key.subkey("digest") for key in keys}
        # The primary's encrypt, token header and associated-data prefix, ready for every seal.
        self._seal = self._aead[self.primary.kid].encrypt
        self._seal_header = f"{TOKEN_VERSION}:{self.primary.kid}:"
        self._seal_aad = f"{TOKEN_VERSION}|{self.primary.kid}|".encode()

    @classmethod
    def from_settings(cls) -> Keyring:
        text = settings.SECUREGATHER_KEYS
        if settings.SECUREGATHER_KEYS_FILE:
            try:
                text = Path(settings.SECUREGATHER_KEYS_FILE).read_text()
            except OSError as exc:
                raise KeyringError(
                    f"SECUREGATHER_KEYS_FILE cannot be read ({exc.strerror})"
                ) from None
        return cls(parse_entries(text))

    @property
    def kids(self) -> list[str]:
        return list(self.keys)

    def seal(self, plaintext: str, context: str) -> str:
        """Encrypt under the primary key, bound to ``context`` (purpose and record)."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._seal(nonce, plaintext.encode(), self._seal_aad + context.encode())
        return f"{self._seal_header}{nonce.hex()}{sealed.hex()}"

    def open(self, token: str, context: str) -> str:
        """Decrypt a token sealed for ``context``. Raises SealError, with no detail, otherwise."""
        try:
            # The version and key id are in the associated data: an edited header fails the tag.
            version, kid, body = token.split(":")
            raw = bytes.fromhex(body)
            aad = f"{version}|{kid}|{context}".encode()
            return self._aead[kid].decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad).decode()
        except (InvalidTag, ValueError, KeyError):
            raise SealError("token cannot be opened") from None

    def digest(self, value: str, purpose: str, kid: str | None = None) -> str:
        """Keyed HMAC-SHA256 of ``value`` for lookups: ``kid:hex``. Never a bare hash."""
        kid = kid or self.primary.kid
        mac = hmac.new(self._digest_keys[kid], f"{purpose}|{value}".encode(), hashlib.sha256)
        return f"{kid}:{mac.hexdigest()}"

    def key_for_audit(self, kid: str) -> Key | None:
        """The key that signed audit rows under ``kid``, if the ring still holds it."""
        return self.keys.get(kid)

    def digests(self, value: str, purpose: str) -> list[str]:
        """The digest under every key in the ring, primary first: finds rows not yet rotated."""
        return [self.digest(value, purpose, kid) for kid in self.keys]


def token_kid(token: str) -> str | None:
    """The key id a token names, or None when it is not a token of ours."""
    parts = token.split(":")
    if len(parts) != 3 or parts[0] != TOKEN_VERSION:
        return None
    return parts[1]


@cache
def get_keyring() -> Keyring:
    """The process-wide keyring, built once from settings."""
    return Keyring.from_settings()


@receiver(setting_changed)
def _forget_keyring(*, setting: str, **kwargs: object) -> None:
    if setting.startswith("SECUREGATHER_KEYS"):
        get_keyring.cache_clear()
