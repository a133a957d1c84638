"""The Node receiver against Python's HPKE: tokens sealed with cryptography, for both suites, open
in examples/backend-node/server.mjs, and public-key.mjs prints the public keys Python derives.
Needs Node 20 and `npm ci` in examples/backend-node."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from cryptography.hazmat.primitives.hpke import (
    AEAD,
    KDF,
    KEM,
    MLKEM768X25519PrivateKey,
    Suite,
)

HERE = Path(__file__).resolve().parent.parent
# Found on PATH once, so a missing Node fails each test with a plain message.
NODE = shutil.which("node") or "node (not on PATH)"
SECRET = "a-signing-secret-of-forty-characters-123"
CALL = "CA" + "7" * 32


def x25519_file(path: Path) -> x25519.X25519PrivateKey:
    key = x25519.X25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.write_bytes(pem)
    return key


def xwing_file(path: Path, seed: bytes) -> MLKEM768X25519PrivateKey:
    path.write_text(
        "-----BEGIN MLKEM768_X25519 SEED-----\n"
        f"{base64.b64encode(seed).decode()}\n"
        "-----END MLKEM768_X25519 SEED-----\n"
    )
    # X-Wing's own expansion of its 32-byte seed: ML-KEM-768's d‖z, then the X25519 key.
    expanded = hashlib.shake_256(seed).digest(96)
    return MLKEM768X25519PrivateKey(
        mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:64]),
        x25519.X25519PrivateKey.from_private_bytes(expanded[64:]),
    )


PrivateKey = x25519.X25519PrivateKey | MLKEM768X25519PrivateKey


def token(
    suite: str, kid: str, key: PrivateKey, value: str, purpose: str, call_sid: str = CALL
) -> str:
    kem = KEM.X25519 if suite == "x25519" else KEM.MLKEM768_X25519
    sealed = Suite(kem, KDF.HKDF_SHA256, AEAD.AES_256_GCM).encrypt(
        value.encode(), key.public_key(), info=f"securegather/{purpose}:{call_sid}".encode()
    )
    return f"hpke1.{suite}.{kid}.{base64.urlsafe_b64encode(sealed).decode().rstrip('=')}"


def post(url: str, card: str, pin: str, call_sid: str = CALL) -> tuple[int, dict[str, object]]:
    stamp = str(int(time.time()))
    key = hashlib.sha256(f"securegather.resolve|{call_sid}".encode()).hexdigest()[:32]
    body = json.dumps(
        {
            "version": 1,
            "kid": "b1",
            "card": card,
            "pin": pin,
            "call_sid": call_sid,
            "caller": "+15005550006",
            "timestamp": stamp,
            "idempotency_key": key,
        }
    ).encode()
    digest = hmac.new(SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-SecureGather-Timestamp": stamp,
        "X-SecureGather-Signature": f"v1={digest}",
    }
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, PrivateKey]:
    return {
        "b1": x25519_file(tmp_path / "backend-b1.pem"),
        "h1": xwing_file(tmp_path / "backend-h1.pem", bytes(range(32))),
    }


@pytest.fixture
def server(tmp_path: Path, keys: dict[str, PrivateKey]) -> Iterator[str]:
    process = subprocess.Popen(  # noqa: S603
        [
            NODE,
            str(HERE / "server.mjs"),
            "--port",
            "0",
            "--private-key",
            str(tmp_path / "backend-b1.pem"),
            "--private-key",
            str(tmp_path / "backend-h1.pem"),
        ],
        env={**os.environ, "SECUREGATHER_BACKEND_SECRET": SECRET},
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    try:
        for line in process.stderr:
            if found := re.search(r"(http://\S+/resolve)", line):
                threading.Thread(target=process.stderr.read, daemon=True).start()
                yield found[1]
                break
        else:
            pytest.fail(f"server.mjs did not start (exit status {process.wait()})")
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


def test_python_sealed_tokens_of_both_suites_open_in_node(server, keys):
    card = token("x25519", "b1", keys["b1"], "1234", "card")
    pin = token("mlkem768x25519", "h1", keys["h1"], "4321", "pin")
    assert post(server, card, pin) == (
        200,
        {
            "status": "found",
            "account": "AC12345678",
            "balance": "12.55",
            "account_ref": "acct_5f0c9e2a41d7",
        },
    )
    other = "CA" + "8" * 32
    card = token("mlkem768x25519", "h1", keys["h1"], "1234", "card", other)
    pin = token("x25519", "b1", keys["b1"], "4320", "pin", other)
    assert post(server, card, pin, other) == (
        200,
        {"status": "not_found", "account_ref": "acct_5f0c9e2a41d7"},
    )


def test_a_python_token_moved_to_another_purpose_does_not_open_in_node(server, keys):
    pin = token("mlkem768x25519", "h1", keys["h1"], "4321", "pin")
    card = token("mlkem768x25519", "h1", keys["h1"], "1234", "pin")
    assert post(server, card, pin) == (
        400,
        {"error": "card: does not open for this purpose and call"},
    )


def test_public_key_mjs_prints_what_python_derives(tmp_path, keys):
    def entry(name: str) -> str:
        return subprocess.run(  # noqa: S603
            [NODE, str(HERE / "public-key.mjs"), str(tmp_path / name)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    x25519_key = keys["b1"]
    assert isinstance(x25519_key, x25519.X25519PrivateKey)
    x25519_public = x25519_key.public_key().public_bytes_raw()
    assert entry("backend-b1.pem") == f"b1:X25519:{base64.b64encode(x25519_public).decode()}\n"
    seed = bytes(range(32))
    expanded = hashlib.shake_256(seed).digest(96)
    hybrid_public = (
        mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:64]).public_key().public_bytes_raw()
        + x25519.X25519PrivateKey.from_private_bytes(expanded[64:]).public_key().public_bytes_raw()
    )
    assert len(hybrid_public) == 1216
    assert entry("backend-h1.pem") == (
        f"h1:MLKEM768_X25519:{base64.b64encode(hybrid_public).decode()}\n"
    )
