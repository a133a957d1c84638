"""Values sealed to the user's backend with HPKE (RFC 9180): write-only for this service.

With the HTTP resolver, each keypad entry is sealed the moment it arrives to the backend's public
key, and only the backend's private key opens it: nothing this service holds (keyring, Django
secret, backend signing secret) can. A token names its format, suite and key id, so a second
suite can follow and the backend knows which of its private keys to use:

    hpke1.x25519.<kid>.<base64url of enc ‖ ciphertext ‖ tag>

The suite is DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM. cryptography's single-shot
``Suite.encrypt`` writes the 32-byte encapsulated key (enc) before the ciphertext. The ``info``
binds a token to its purpose and call (``securegather/card:<CallSid>``): a card token opens
neither as a PIN nor under another call.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite
from django.conf import settings

FORMAT = "hpke1"
SUITE_NAME = "x25519"  # DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM
SUITE = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.AES_256_GCM)
ENC_BYTES = KEM.X25519.enc_length()  # 32
TAG_BYTES = 16
KID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,32}")
TOKEN_PATTERN = re.compile(
    rf"{FORMAT}\.{SUITE_NAME}\.(?P<kid>{KID_PATTERN.pattern})\.(?P<body>[A-Za-z0-9_-]{{60,200}})"
)
# The purposes a token may be sealed for: what the backend expects in ``info``.
PURPOSES = ("card", "pin")


class BackendKeyError(ValueError):
    """A public key entry that is not ``kid:base64`` of 32 bytes. The message quotes no key."""


@dataclass(frozen=True)
class BackendKey:
    kid: str
    public_key: X25519PublicKey


def info(purpose: str, call_sid: str) -> bytes:
    """HPKE's ``info`` for a value: its purpose and its call."""
    return f"securegather/{purpose}:{call_sid}".encode()


def parse_public_keys(text: str) -> list[BackendKey]:
    """``kid:base64`` entries, comma separated, the first the one that seals."""
    keys: list[BackendKey] = []
    for position, entry in enumerate(filter(None, (e.strip() for e in text.split(","))), 1):
        kid, colon, encoded = entry.partition(":")
        if not colon or not KID_PATTERN.fullmatch(kid):
            raise BackendKeyError(
                f"entry {position} is not 'kid:base64' (kid: 1-32 of A-Z a-z 0-9 _ -)"
            )
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise BackendKeyError(f"entry {position} ({kid}) is not base64") from None
        if len(raw) != 32:
            raise BackendKeyError(f"entry {position} ({kid}) is not a 32-byte X25519 public key")
        if any(key.kid == kid for key in keys):
            raise BackendKeyError(f"key id {kid} appears twice")
        keys.append(BackendKey(kid, X25519PublicKey.from_public_bytes(raw)))
    if not keys:
        raise BackendKeyError("no public key is configured")
    return keys


@cache
def _sealing_key(text: str) -> BackendKey:
    return parse_public_keys(text)[0]


def sealing_key() -> BackendKey:
    """The backend's key that seals: the first of SECUREGATHER_BACKEND_PUBLIC_KEYS."""
    return _sealing_key(settings.SECUREGATHER_BACKEND_PUBLIC_KEYS)


def seal(plaintext: str, purpose: str, call_sid: str, key: BackendKey | None = None) -> str:
    """A token only the backend's private key opens, bound to ``purpose`` and ``call_sid``."""
    key = key or sealing_key()
    sealed = SUITE.encrypt(plaintext.encode(), key.public_key, info=info(purpose, call_sid))
    body = base64.urlsafe_b64encode(sealed).rstrip(b"=").decode()
    return f"{FORMAT}.{SUITE_NAME}.{key.kid}.{body}"


def is_token(text: str) -> bool:
    return TOKEN_PATTERN.fullmatch(text) is not None


def token_kid(text: str) -> str | None:
    """The backend key id a token names, or None when it is not a backend token."""
    match = TOKEN_PATTERN.fullmatch(text)
    return match["kid"] if match else None


def new_keypair() -> tuple[bytes, str]:
    """A new X25519 key pair: the private key as PKCS#8 PEM, the raw public key in base64."""
    private = X25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return pem, base64.b64encode(public).decode()


def write_private_key(path: Path, pem: bytes) -> None:
    """Write a private key to a new file that only its owner can read (0600 from creation, so
    no moment exists when others could). FileExistsError rather than overwrite a key."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(pem)
