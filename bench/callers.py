"""In-process callers for the guessing and timing benchmarks: a signed voice call step by step,
and the decrypt API with the tutorial's ciphertexts, through Django's test client (no server).

``setup()`` makes a fresh database (migrated, with the demo account) and starts Django on it.
"""

from __future__ import annotations

import itertools
import os
import secrets
from typing import Any
from urllib.parse import urlencode

from bench.server import AUTH_TOKEN, bench_env, fresh_database, manage

LEGACY_KEY = secrets.token_hex(32)
API_TOKEN = secrets.token_urlsafe(24)
_sids = itertools.count(1)


def setup(kind: str, name: str, **settings: str) -> None:
    """A fresh database of ``kind`` with the demo account, and Django set up on it, with
    ``settings`` (environment variables) besides the benchmark's own."""
    env = bench_env(
        fresh_database(kind, name),
        SECUREGATHER_LEGACY_KEY=LEGACY_KEY,
        SECUREGATHER_API_TOKEN=API_TOKEN,
        # The benchmark's own database, with one role for everything (audit.E002 off).
        SECUREGATHER_DATABASE_ONE_ROLE="true",
        **settings,
    )
    manage(env, "migrate", "--noinput")
    manage(env, "seed_demo")
    os.environ.update(env)

    import django

    django.setup()


class Callers:
    """Signed voice calls and API requests, each answer's status and body returned."""

    def __init__(self) -> None:
        from django.test import Client
        from twilio.request_validator import RequestValidator

        self.client = Client(HTTP_HOST="127.0.0.1")
        self.validator = RequestValidator(AUTH_TOKEN)
        self.bearer = f"Bearer {API_TOKEN}"

    def step(self, path: str, params: dict[str, str]) -> Any:
        url = f"http://127.0.0.1{path}"
        return self.client.post(
            path,
            urlencode(params),
            content_type="application/x-www-form-urlencoded",
            HTTP_X_TWILIO_SIGNATURE=self.validator.compute_signature(url, params),
        )

    def call(self, caller: str, card: str, pin: str, attestation: str = "") -> str:
        """One whole call up to its PIN's answer; the words of the last answer."""
        params = self.start(caller, attestation)
        self.step("/voice/card/", {**params, "Digits": card})
        return str(self.step("/voice/pin/", {**params, "Digits": pin}).content)

    def start(self, caller: str, attestation: str = "") -> dict[str, str]:
        """Start a call; its parameters, for the steps that follow."""
        params = {
            "CallSid": f"CA{next(_sids):032x}",
            "AccountSid": "",
            "From": caller,
            "To": "+15005550001",
            "CallStatus": "in-progress",
        }
        if attestation:
            params["StirVerstat"] = attestation
        self.step("/voice/", params)
        return params

    def api(self, card: str, pin: str) -> Any:
        """One decrypt-gather request, as the tutorial's Function sends it."""
        import json

        body = json.dumps(
            {"encryptedCardDigits": encrypt(card), "encryptedPinDigits": encrypt(pin)}
        )
        return self.client.post(
            "/api/decrypt-gather",
            body,
            content_type="application/json",
            HTTP_AUTHORIZATION=self.bearer,
        )


def encrypt(digits: str) -> str:
    """The tutorial's ciphertext: hex(nonce ‖ AES-256-GCM ciphertext ‖ tag), no associated data."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(12)
    return (nonce + AESGCM(bytes.fromhex(LEGACY_KEY)).encrypt(nonce, digits.encode(), None)).hex()
