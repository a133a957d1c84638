"""Values sealed to the user's backend with HPKE (RFC 9180): write-only for this service.

With the HTTP resolver, each keypad entry is sealed the moment it arrives to the backend's public
key, and only the backend's private key opens it: nothing this service holds (keyring, Django
secret, backend signing secret) can. A token names its format, suite and key id, so the backend
knows which of its private keys to use:

    hpke1.<suite>.<kid>.<base64url of enc ‖ ciphertext ‖ tag>

Two suites, both with HKDF-SHA256 and AES-256-GCM, differ in their KEM:

- ``x25519``: DHKEM(X25519, HKDF-SHA256). A 32-byte public key and encapsulated key (enc).
- ``mlkem768x25519``: X-Wing, ML-KEM-768 combined with X25519, which holds as long as either
  does: a ciphertext stored today stays closed to a quantum computer built later. A 1,216-byte
  public key and a 1,120-byte enc, so a sealed PIN is 1,140 bytes, 1,520 characters in a token.

cryptography's single-shot ``Suite.encrypt`` writes enc before the ciphertext. The ``info``
binds a token to its purpose and call (``securegather/card:<CallSid>``): a card token opens
neither as a PIN nor under another call. ``SECUREGATHER_BACKEND_KEM`` names the suite that seals;
the backend's ring may hold keys of both, so a deployment moves from one to the other without a
flag day (docs/backend.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from cryptography.hazmat.primitives.hpke import (
    AEAD,
    KDF,
    KEM,
    MLKEM768X25519PublicKey,
    Suite,
)
from django.conf import settings

FORMAT = "hpke1"
TAG_BYTES = 16
KID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,32}")
# The purposes a token may be sealed for: what the backend expects in ``info``.
PURPOSES = ("card", "pin")
# The PEM label of a hybrid private key file: the X-Wing seed, 32 bytes, and nothing else.
SEED_LABEL = "MLKEM768_X25519 SEED"
SEED_BYTES = 32
MLKEM768_PUBLIC_BYTES = 1184

PublicKey = x25519.X25519PublicKey | MLKEM768X25519PublicKey


@dataclass(frozen=True)
class Kem:
    """One suite of format hpke1: what the settings call it and what a token calls it."""

    name: str  # in SECUREGATHER_BACKEND_KEM and public entries
    token_name: str  # in tokens
    suite: Suite
    public_bytes: int
    enc_bytes: int

    def fits(self, body: str) -> bool:
        """Whether a token's body is as long as this suite's seal of a short value can be:
        enc, a few bytes, the tag, in unpadded base64url (a 4-digit value: 70 characters with
        X25519, 1,520 with X-Wing)."""
        least = (self.enc_bytes + 1 + TAG_BYTES) * 4 // 3
        return least <= len(body) <= least + 128


X25519 = Kem("X25519", "x25519", Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.AES_256_GCM), 32, 32)
MLKEM768_X25519 = Kem(
    "MLKEM768_X25519",
    "mlkem768x25519",
    Suite(KEM.MLKEM768_X25519, KDF.HKDF_SHA256, AEAD.AES_256_GCM),
    MLKEM768_PUBLIC_BYTES + 32,
    KEM.MLKEM768_X25519.enc_length(),  # 1,088 of ML-KEM-768 and 32 of X25519
)
KEMS = {kem.name: kem for kem in (X25519, MLKEM768_X25519)}
BY_TOKEN_NAME = {kem.token_name: kem for kem in KEMS.values()}

TOKEN_PATTERN = re.compile(
    rf"{FORMAT}\.(?P<suite>{'|'.join(BY_TOKEN_NAME)})\.(?P<kid>{KID_PATTERN.pattern})"
    r"\.(?P<body>[A-Za-z0-9_-]+)"
)
# The longest token, for the columns that hold them: a hybrid token of a 4-digit value with
# the longest key id is 1,574 characters.
TOKEN_MAX_LENGTH = 2048


class BackendKeyError(ValueError):
    """A public key entry that is not ``kid[:SUITE]:base64`` of a key of that suite, or a suite
    with no key to seal. The message quotes no key."""


@dataclass(frozen=True)
class BackendKey:
    kid: str
    kem: Kem
    public_key: PublicKey


def info(purpose: str, call_sid: str) -> bytes:
    """HPKE's ``info`` for a value: its purpose and its call."""
    return f"securegather/{purpose}:{call_sid}".encode()


def load_public_key(kem: Kem, raw: bytes) -> PublicKey:
    """A suite's public key from its raw bytes: X25519's 32, or X-Wing's ML-KEM-768
    encapsulation key (1,184 bytes) followed by its X25519 key (32), as the draft orders them."""
    if kem is X25519:
        return x25519.X25519PublicKey.from_public_bytes(raw)
    return MLKEM768X25519PublicKey(
        mlkem.MLKEM768PublicKey.from_public_bytes(raw[:MLKEM768_PUBLIC_BYTES]),
        x25519.X25519PublicKey.from_public_bytes(raw[MLKEM768_PUBLIC_BYTES:]),
    )


def parse_public_keys(text: str) -> list[BackendKey]:
    """``kid:SUITE:base64`` entries, comma separated; ``kid:base64`` is an X25519 key."""
    keys: list[BackendKey] = []
    for position, entry in enumerate(filter(None, (e.strip() for e in text.split(","))), 1):
        kid, _, rest = entry.partition(":")
        suite, colon, encoded = rest.rpartition(":")
        if not rest or not KID_PATTERN.fullmatch(kid):
            raise BackendKeyError(
                f"entry {position} is not 'kid:SUITE:base64' (kid: 1-32 of A-Z a-z 0-9 _ -)"
            )
        kem = KEMS.get(suite if colon else X25519.name)
        if kem is None:
            raise BackendKeyError(
                f"entry {position} ({kid}) names no known suite (one of {', '.join(KEMS)})"
            )
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise BackendKeyError(f"entry {position} ({kid}) is not base64") from None
        if len(raw) != kem.public_bytes:
            raise BackendKeyError(
                f"entry {position} ({kid}) is not a {kem.public_bytes}-byte {kem.name} public key"
            )
        if any(key.kid == kid for key in keys):
            raise BackendKeyError(f"key id {kid} appears twice")
        try:
            public_key = load_public_key(kem, raw)
        except ValueError:
            raise BackendKeyError(f"entry {position} ({kid}) is no {kem.name} public key") from None
        keys.append(BackendKey(kid, kem, public_key))
    if not keys:
        raise BackendKeyError("no public key is configured")
    return keys


@cache
def _sealing_key(text: str, kem_name: str) -> BackendKey:
    for key in parse_public_keys(text):
        if key.kem.name == kem_name:
            return key
    raise BackendKeyError(f"no {kem_name} key is configured to seal with")


def sealing_key() -> BackendKey:
    """The backend's key that seals: the first of SECUREGATHER_BACKEND_PUBLIC_KEYS of the suite
    SECUREGATHER_BACKEND_KEM names."""
    keys, kem = settings.SECUREGATHER_BACKEND_PUBLIC_KEYS, settings.SECUREGATHER_BACKEND_KEM
    return _sealing_key(keys, kem)


def seal(plaintext: str, purpose: str, call_sid: str, key: BackendKey | None = None) -> str:
    """A token only the backend's private key opens, bound to ``purpose`` and ``call_sid``."""
    key = key or sealing_key()
    sealed = key.kem.suite.encrypt(plaintext.encode(), key.public_key, info=info(purpose, call_sid))
    body = base64.urlsafe_b64encode(sealed).rstrip(b"=").decode()
    return f"{FORMAT}.{key.kem.token_name}.{key.kid}.{body}"


def _token(text: str) -> re.Match[str] | None:
    match = TOKEN_PATTERN.fullmatch(text)
    if match is None or not BY_TOKEN_NAME[match["suite"]].fits(match["body"]):
        return None
    return match


def is_token(text: str) -> bool:
    return _token(text) is not None


def token_kid(text: str) -> str | None:
    """The backend key id a token names, or None when it is not a backend token."""
    match = _token(text)
    return match["kid"] if match else None


def seed_keys(seed: bytes) -> tuple[mlkem.MLKEM768PrivateKey, x25519.X25519PrivateKey]:
    """The two halves of X-Wing's private key from its 32-byte seed, expanded as the draft does
    (draft-connolly-cfrg-xwing-kem, which draft-ietf-hpke-pq takes for HPKE): SHAKE256 of the
    seed gives 96 bytes, the first 64 ML-KEM-768's seed (d ‖ z), the last 32 the X25519 key.
    cryptography's hybrid key objects have no serialization of their own: the seed is the file."""
    if len(seed) != SEED_BYTES:
        raise ValueError("an X-Wing seed is 32 bytes")
    expanded = hashlib.shake_256(seed).digest(96)
    return (
        mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:64]),
        x25519.X25519PrivateKey.from_private_bytes(expanded[64:]),
    )


def hybrid_public_bytes(seed: bytes) -> bytes:
    """The public key of the seed's X-Wing key pair, as entries and the backend spell it."""
    encapsulation, exchange = (key.public_key() for key in seed_keys(seed))
    return encapsulation.public_bytes_raw() + exchange.public_bytes_raw()


def seed_pem(seed: bytes) -> bytes:
    """A seed in PEM armour, so the file is text an operator can move like any key file."""
    body = base64.encodebytes(seed).decode().strip()
    return f"-----BEGIN {SEED_LABEL}-----\n{body}\n-----END {SEED_LABEL}-----\n".encode()


def new_keypair(kem_name: str = X25519.name) -> tuple[bytes, str]:
    """A new key pair of the suite: the private key file's bytes, and the public entry's
    ``SUITE:base64`` (the key id goes before it). X25519's file is PKCS#8 PEM; X-Wing's is
    its 32-byte seed in PEM armour (:func:`seed_pem`)."""
    kem = KEMS[kem_name]
    if kem is MLKEM768_X25519:
        seed = os.urandom(SEED_BYTES)
        private_file, public = seed_pem(seed), hybrid_public_bytes(seed)
    else:
        private = x25519.X25519PrivateKey.generate()
        private_file = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        public = private.public_key().public_bytes_raw()
    return private_file, f"{kem.name}:{base64.b64encode(public).decode()}"


def write_private_key(path: Path, pem: bytes) -> None:
    """Write a private key to a new file that only its owner can read (0600 from creation, so
    no moment exists when others could). FileExistsError rather than overwrite a key."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(pem)
