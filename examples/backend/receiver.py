"""The backend's side of SecureGather's HTTP resolver: verify, open, hand over, answer.

Copy this file into the service that holds your accounts; it needs Python 3.11 and the
``cryptography`` package (50, as SecureGather pins it, for HPKE with X-Wing), nothing of
SecureGather. Give it the signing secret SecureGather holds (SECUREGATHER_BACKEND_SECRET), your
private key(s) by key id (of either suite, as ``manage.py backend_keypair`` writes them), and a
function ``check(card_last4, pin, caller)`` that returns one of :func:`found`, :func:`not_found`
or :func:`locked`. Then hand every POST's headers and body to :meth:`Receiver.handle` and send
back the status and JSON it returns.

What it enforces, in order:
1. the HMAC-SHA256 signature over ``<timestamp>.<body>`` (compared in constant time), with the
   timestamp within 5 minutes of this host's clock;
2. the idempotency key (derived by SecureGather from the CallSid): a request seen before gets its
   first answer again, never a second check; the same key with another body is refused, and so
   is a ciphertext seen before under another key;
3. each ciphertext opened with the private key its key id names, bound by HPKE's ``info`` to
   its purpose (card or PIN) and its CallSid: a swapped or moved ciphertext does not open.

The digits exist only inside :meth:`Receiver.handle` and your function: no error, log line or
answer here carries them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.hpke import (
    AEAD,
    KDF,
    KEM,
    MLKEM768X25519PrivateKey,
    Suite,
)

PrivateKey = X25519PrivateKey | MLKEM768X25519PrivateKey
# The suites of format "hpke1", by the name a token gives: the KEM, then HKDF-SHA256 and
# AES-256-GCM. x25519 is DHKEM(X25519, HKDF-SHA256); mlkem768x25519 is X-Wing, ML-KEM-768 with
# X25519, which a quantum computer does not open as long as ML-KEM holds.
SUITES: dict[str, tuple[Suite, KEM, type[PrivateKey]]] = {
    "x25519": (Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.AES_256_GCM), KEM.X25519, X25519PrivateKey),
    "mlkem768x25519": (
        Suite(KEM.MLKEM768_X25519, KDF.HKDF_SHA256, AEAD.AES_256_GCM),
        KEM.MLKEM768_X25519,
        MLKEM768X25519PrivateKey,
    ),
}
TAG_BYTES = 16
# An X-Wing private key file (``manage.py backend_keypair --kem MLKEM768_X25519``): its 32-byte
# seed in PEM armour under this label.
SEED_LABEL = "MLKEM768_X25519 SEED"
TOLERANCE = 5 * 60  # seconds either side of this host's clock
# Answers kept for replays: longer than the tolerance, so a request is stale before it is
# forgotten, and a bound on memory whatever the rate.
REMEMBERED_SECONDS = 2 * TOLERANCE
REMEMBERED_MAX = 100_000
SIGNATURE_HEADER = "X-SecureGather-Signature"
TIMESTAMP_HEADER = "X-SecureGather-Timestamp"
TOKEN = re.compile(
    r"hpke1\.(?P<suite>[a-z0-9]+)\.(?P<kid>[A-Za-z0-9_-]{1,32})\.(?P<body>[A-Za-z0-9_-]+)"
)
FOUR_DIGITS = re.compile(r"[0-9]{4}")
FIELDS = ("idempotency_key", "call_sid", "caller", "card", "pin")

Answer = dict[str, Any]
Check = Callable[[str, str, str], Answer]


def found(account: str, balance: str, account_ref: str = "") -> Answer:
    answer: Answer = {"status": "found", "account": account, "balance": balance}
    if account_ref:
        answer["account_ref"] = account_ref
    return answer


def not_found(account_ref: str = "") -> Answer:
    """No account for these digits. ``account_ref``: an opaque, stable reference to the account
    the card matched when only the PIN was wrong (SecureGather counts failures on it); leave it
    empty when the card matched none."""
    return (
        {"status": "not_found", "account_ref": account_ref}
        if account_ref
        else {"status": "not_found"}
    )


def locked() -> Answer:
    """Your own lock on the account (if you keep one): SecureGather tells the caller so."""
    return {"status": "locked"}


def info(purpose: str, call_sid: str) -> bytes:
    return f"securegather/{purpose}:{call_sid}".encode()


def load_private_key(pem: bytes) -> PrivateKey:
    """A private key file of either suite: X25519 as PKCS#8 PEM, X-Wing as its seed."""
    text = pem.decode("ascii", errors="replace").strip()
    begin, end = f"-----BEGIN {SEED_LABEL}-----", f"-----END {SEED_LABEL}-----"
    if text.startswith(begin) and text.endswith(end):
        try:
            seed = base64.b64decode("".join(text[len(begin) : -len(end)].split()), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("not an X-Wing seed file") from None
        return hybrid_private_key(seed)
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, X25519PrivateKey):
        raise ValueError("not an X25519 private key")
    return key


def hybrid_private_key(seed: bytes) -> MLKEM768X25519PrivateKey:
    """X-Wing's key pair from its 32-byte seed, expanded as the draft does: SHAKE256 gives 96
    bytes, the first 64 ML-KEM-768's seed (d ‖ z), the last 32 the X25519 private key."""
    if len(seed) != 32:
        raise ValueError("an X-Wing seed is 32 bytes")
    expanded = hashlib.shake_256(seed).digest(96)
    return MLKEM768X25519PrivateKey(
        MLKEM768PrivateKey.from_seed_bytes(expanded[:64]),
        X25519PrivateKey.from_private_bytes(expanded[64:]),
    )


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The signature header's value, as SecureGather computes it."""
    return "v1=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class Refused(Exception):
    """A request that must not be answered: its HTTP status and a reason naming no value."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


def idempotency_key(call_sid: str) -> str:
    """The key SecureGather derives from the CallSid: one check per call, whatever redelivers."""
    return hashlib.sha256(f"securegather.resolve|{call_sid}".encode()).hexdigest()[:32]


def fingerprint(token: str) -> bytes:
    """What identifies a sealed value: a digest of its bytes, not of its spelling, which
    base64's unused trailing bits let a sender vary without changing a byte."""
    match = TOKEN.fullmatch(token)
    body = match["body"] if match else token
    try:
        sealed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        sealed = token.encode()
    return hashlib.sha256(sealed).digest()


@dataclass
class Receiver:
    secret: bytes
    private_keys: Mapping[str, PrivateKey]
    check: Check
    now: Callable[[], float] = time.time
    # Idempotency key → (when, body digest, answer); ciphertext digest → idempotency key.
    _answers: OrderedDict[str, tuple[float, bytes, Answer]] = field(default_factory=OrderedDict)
    _tokens: OrderedDict[bytes, tuple[float, str]] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, headers: Mapping[str, str], body: bytes) -> tuple[int, Answer]:
        """The HTTP status and JSON answer for one request to the resolve endpoint."""
        try:
            return 200, self._answer(headers, body)
        except Refused as refusal:
            return refusal.status, {"error": refusal.reason}

    def _answer(self, headers: Mapping[str, str], body: bytes) -> Answer:
        lowered = {name.lower(): value for name, value in headers.items()}
        timestamp = lowered.get(TIMESTAMP_HEADER.lower(), "")
        signature = lowered.get(SIGNATURE_HEADER.lower(), "")
        if not hmac.compare_digest(sign(self.secret, timestamp, body), signature):
            raise Refused(401, "bad signature")
        # ASCII digits only: str.isdigit() takes "²", which int() refuses.
        if not (timestamp.isascii() and timestamp.isdigit()):
            raise Refused(401, "stale or future timestamp")
        if abs(self.now() - int(timestamp)) > TOLERANCE:
            raise Refused(401, "stale or future timestamp")
        try:
            request = json.loads(body)
        except ValueError:
            raise Refused(400, "malformed request") from None
        # Each field SecureGather sends, present and a string: anything else is no request of
        # SecureGather's, whatever str() would make of it.
        if not isinstance(request, dict) or not all(
            isinstance(request.get(name), str) for name in FIELDS
        ):
            raise Refused(400, "malformed request")
        key, call_sid, caller, card_token, pin_token = (request[name] for name in FIELDS)
        if str(request.get("timestamp")) != timestamp:
            raise Refused(400, "timestamp differs from the signed header")
        if not hmac.compare_digest(key, idempotency_key(call_sid)):
            raise Refused(400, "idempotency key is not the call's")
        digest = hashlib.sha256(body).digest()
        with self._lock:
            self._forget(self.now())
            if key in self._answers:
                _, first_body, answer = self._answers[key]
                if not hmac.compare_digest(first_body, digest):
                    raise Refused(409, "idempotency key reused for another request")
                return {**answer, "replayed": True}
            tokens = [fingerprint(token) for token in (card_token, pin_token)]
            if any(token in self._tokens for token in tokens):
                raise Refused(409, "ciphertext already used")
            card = self._open(card_token, "card", call_sid)
            pin = self._open(pin_token, "pin", call_sid)
            if not (FOUR_DIGITS.fullmatch(card) and FOUR_DIGITS.fullmatch(pin)):
                raise Refused(400, "sealed values are not 4 digits")
            # Held under the lock: two deliveries of one key must not both reach the check.
            answer = self.check(card, pin, caller)
            now = self.now()
            self._answers[key] = (now, digest, answer)
            for token in tokens:
                self._tokens[token] = (now, key)
        return answer

    def _open(self, token: str, purpose: str, call_sid: str) -> str:
        # (fingerprint() below reads tokens the same way, to remember the ciphertext itself.)
        match = TOKEN.fullmatch(token)
        if match is None or match["suite"] not in SUITES:
            raise Refused(400, f"{purpose}: not a token of a known suite")
        suite, kem, key_type = SUITES[match["suite"]]
        private_key = self.private_keys.get(match["kid"])
        if private_key is None:
            raise Refused(400, f"{purpose}: unknown key id {match['kid']}")
        if not isinstance(private_key, key_type):
            raise Refused(400, f"{purpose}: key {match['kid']} is not a {match['suite']} key")
        try:
            body = match["body"]
            sealed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            raise Refused(400, f"{purpose}: not base64url") from None
        # The encapsulated key (enc: 32 bytes for X25519, 1,120 for X-Wing) comes first, then
        # the ciphertext and tag; cryptography's single-shot decrypt splits them there.
        if len(sealed) <= kem.enc_length() + TAG_BYTES:
            raise Refused(400, f"{purpose}: too short")
        try:
            return suite.decrypt(sealed, private_key, info=info(purpose, call_sid)).decode()
        except (InvalidTag, UnicodeDecodeError):
            raise Refused(400, f"{purpose}: does not open for this purpose and call") from None

    def _forget(self, now: float) -> None:
        """Drop what is older than REMEMBERED_SECONDS, or beyond REMEMBERED_MAX, oldest first."""
        oldest = now - REMEMBERED_SECONDS
        answers, tokens = self._answers, self._tokens
        while answers and (
            len(answers) > REMEMBERED_MAX or next(iter(answers.values()))[0] < oldest
        ):
            answers.popitem(last=False)
        while tokens and (len(tokens) > REMEMBERED_MAX or next(iter(tokens.values()))[0] < oldest):
            tokens.popitem(last=False)
