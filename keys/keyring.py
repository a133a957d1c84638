"""The keyring: AES-256-GCM sealing and keyed digests under named keys.

A keyring entry is ``kid:64-hex-chars``; entries are comma (or newline) separated and the first is
primary: it seals and digests everything new. The others only open what they sealed before, so
values keep opening while a rotation moves them to the primary.

An entry ending in ``:retired`` (``kid:64-hex-chars:retired``) is a retired key: it never seals,
digests, opens or matches a digest again, and is handed out only by :meth:`Keyring.key_for_audit`,
so audit history signed under it stays verifiable after every sealed value has left it.

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
TAG_BYTES = 16  # AES-GCM's tag, after the ciphertext
# What Keyring.seal writes: "sg1:kid:" then nonce, ciphertext and tag in lowercase hex.
TOKEN_PATTERN = re.compile(
    rf"{TOKEN_VERSION}:{KID_PATTERN.pattern}:(?:[0-9a-f]{{2}}){{{NONCE_BYTES + TAG_BYTES},}}"
)
# The key printed in Twilio's tutorial: public, so never a real key.
TUTORIAL_SAMPLE_KEY = "a154eb4c759711bc2538a7cc021e9e9f17dd8aa63151c62ca28a82a4a404203d"


RETIRED = "retired"


class KeyringError(Exception):
    """The keyring configuration is unusable. Messages never include key material.

    ``problem`` names what is wrong, one system check id each: missing, malformed, length,
    duplicate, unreadable.
    """

    def __init__(self, message: str, problem: str = "malformed") -> None:
        super().__init__(message)
        self.problem = problem


class SealError(Exception):
    """A token could not be opened: unknown key, wrong context, or tampered. Says no more."""


@dataclass(frozen=True)
class Key:
    kid: str
    secret: bytes = field(repr=False)
    retired: bool = False

    def subkey(self, label: str) -> bytes:
        """A 32-byte key for one purpose, so sealing and digests never share key bytes."""
        return HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=f"securegather:{label}".encode()
        ).derive(self.secret)

    @property
    def check_value(self) -> str:
        """A keyed digest of a fixed label: tells whether an id still means the same bytes."""
        return hmac.new(self.subkey("check"), b"key-check-value", hashlib.sha256).hexdigest()[:16]


def parse_problems(text: str) -> tuple[list[Key], list[KeyringError]]:
    """Parse ``kid:hex[:retired]`` entries: the well-formed keys and every problem found.

    Problems name an entry by position or key id, never by content.
    """
    keys: list[Key] = []
    problems: list[KeyringError] = []
    seen: set[str] = set()
    entries = [e.strip() for e in re.split(r"[,\n]", text) if e.strip()]
    for position, entry in enumerate(entries, start=1):
        kid, sep, rest = entry.partition(":")
        hexkey, _, flag = rest.partition(":")
        if not sep or not KID_PATTERN.fullmatch(kid) or flag not in {"", RETIRED}:
            problems.append(
                KeyringError(
                    f"entry {position} is not 'kid:hex' or 'kid:hex:retired' "
                    "(kid: letters, digits, _ or -)"
                )
            )
            continue
        try:
            secret = bytes.fromhex(hexkey)
        except ValueError:
            problems.append(KeyringError(f"key {kid!r} is not hexadecimal"))
            continue
        if len(secret) != KEY_BYTES:
            problems.append(
                KeyringError(f"key {kid!r} is {len(secret)} bytes, not {KEY_BYTES}", "length")
            )
            continue
        if kid in seen:
            problems.append(KeyringError(f"key id {kid!r} appears twice", "duplicate"))
            continue
        seen.add(kid)
        keys.append(Key(kid, secret, retired=flag == RETIRED))
    if not problems and not any(not key.retired for key in keys):
        message = "every key is retired" if keys else "no keys configured"
        problems.append(
            KeyringError(f"{message}: set SECUREGATHER_KEYS or SECUREGATHER_KEYS_FILE", "missing")
        )
    return keys, problems


def parse_entries(text: str) -> list[Key]:
    """Parse ``kid:hex[:retired]`` entries. Raises the first problem as a KeyringError."""
    keys, problems = parse_problems(text)
    if problems:
        raise problems[0]
    return keys


def read_keys_text() -> str:
    """The keyring text from SECUREGATHER_KEYS_FILE when set, else SECUREGATHER_KEYS."""
    if not settings.SECUREGATHER_KEYS_FILE:
        return settings.SECUREGATHER_KEYS
    try:
        return Path(settings.SECUREGATHER_KEYS_FILE).read_text()
    except OSError as exc:
        raise KeyringError(
            f"SECUREGATHER_KEYS_FILE cannot be read ({exc.strerror})", "unreadable"
        ) from None


def new_key_entry(kid: str | None = None) -> str:
    """A fresh ``kid:hex`` entry from the OS's CSPRNG."""
    kid = kid or f"k{date.today():%Y%m%d}{secrets.token_hex(2)}"
    if not KID_PATTERN.fullmatch(kid):
        raise KeyringError("a key id is 1-32 letters, digits, _ or -")
    return f"{kid}:{secrets.token_hex(KEY_BYTES)}"


class Keyring:
    def __init__(self, keys: list[Key]) -> None:
        active = [key for key in keys if not key.retired]
        if not active:
            raise KeyringError(
                "no keys configured: set SECUREGATHER_KEYS or SECUREGATHER_KEYS_FILE", "missing"
            )
        # Only active keys seal, open and digest; retired ones serve audit history alone.
        self.keys = {key.kid: key for key in active}
        self.retired = {key.kid: key for key in keys if key.retired}
        self.primary = active[0]
        # AESGCM objects and digest subkeys are derived once per process, not per request.
        self._aead = {key.kid: AESGCM(key.subkey("seal")) for key in active}
        self._digest_keys = {key.kid: key.subkey("digest") for key in active}
        # Retired keys digest nothing new; they only find what was digested under them in rows
        # never rotated (the audit log's).
        self._retired_digest_keys = {kid: key.subkey("digest") for kid, key in self.retired.items()}
        # Ready for every seal and open: the primary's encrypt, its token header ("sg1:kid") and
        # associated-data prefix ("sg1:kid|"), and each key's decrypt by token header.
        self._seal = self._aead[self.primary.kid].encrypt
        self._seal_header = f"{TOKEN_VERSION}:{self.primary.kid}"
        self._seal_aad = f"{self._seal_header}|".encode()
        self._decrypt = {f"{TOKEN_VERSION}:{kid}": aead.decrypt for kid, aead in self._aead.items()}
        # Seals made by this process and not yet added to the database's count (KeyRecord).
        # A counter in memory, not a write per seal: sealing is on every call's hot path.
        # Only the primary seals, so one number.
        self.unrecorded_seals = 0
        self.recorded = False

    @classmethod
    def from_settings(cls) -> Keyring:
        return cls(parse_entries(read_keys_text()))

    @property
    def kids(self) -> list[str]:
        return list(self.keys)

    @property
    def every_key(self) -> list[Key]:
        """Every key the ring holds, active (primary first) then retired: each id it knows."""
        return [*self.keys.values(), *self.retired.values()]

    def seal(self, plaintext: str, context: str) -> str:
        """Encrypt under the primary key, bound to ``context`` (purpose and record)."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._seal(nonce, plaintext.encode(), self._seal_aad + context.encode())
        self.unrecorded_seals += 1
        return f"{self._seal_header}:{nonce.hex()}{sealed.hex()}"

    def open(self, token: str, context: str) -> str:
        """Decrypt a token sealed for ``context``. Raises SealError, with no detail, otherwise."""
        # The header ("sg1:kid") is in the associated data: an edited header fails the tag.
        header, _, body = token.rpartition(":")
        try:
            raw = bytes.fromhex(body)
            aad = f"{header}|{context}".encode()
            return self._decrypt[header](raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad).decode()
        except (InvalidTag, ValueError, KeyError):
            raise SealError("token cannot be opened") from None

    def digest(self, value: str, purpose: str, kid: str | None = None) -> str:
        """Keyed HMAC-SHA256 of ``value`` for lookups: ``kid:hex``. Never a bare hash."""
        kid = kid or self.primary.kid
        mac = hmac.new(self._digest_keys[kid], f"{purpose}|{value}".encode(), hashlib.sha256)
        return f"{kid}:{mac.hexdigest()}"

    def key_for_audit(self, kid: str) -> Key | None:
        """The key that signed audit rows under ``kid``, active or retired, if the ring holds it."""
        return self.keys.get(kid) or self.retired.get(kid)

    def digests(self, value: str, purpose: str, *, retired: bool = False) -> list[str]:
        """The digest under every key in the ring, primary first: finds rows not yet rotated.

        With ``retired``, under the retired keys too: the audit log is never rotated, so its rows
        written under a key since retired stay findable while that key is in the ring.
        """
        found = [self.digest(value, purpose, kid) for kid in self.keys]
        if retired:
            message = f"{purpose}|{value}".encode()
            found += [
                f"{kid}:{hmac.new(subkey, message, hashlib.sha256).hexdigest()}"
                for kid, subkey in self._retired_digest_keys.items()
            ]
        return found


def is_token(text: str) -> bool:
    """Whether ``text`` has a token's form (a plaintext never has)."""
    return TOKEN_PATTERN.fullmatch(text) is not None


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
