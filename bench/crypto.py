"""Seal and open through the project's keyring against raw cryptography AESGCM, in one run.

    .venv/bin/python bench/crypto.py [--rounds 200000] [--repeat 5]

Both sides do the work a call step does with one value: a fresh 96-bit nonce, AES-256-GCM
encryption of 4 digits with associated data, then decryption. Raw AESGCM is timed twice: with its
associated data built once (the floor), and built per value from the record's context, as any use
that binds a value to its record must. The keyring adds the token text (header, hex) and the key
lookup. Each repeat times all three, one after another, and the ratio is the median of the
repeats' ratios: on a shared VM the speed drifts between runs. Target: keyring seal+open within
1.5x of raw AESGCM.

Beside them, for the HTTP resolver, with each suite (X25519, and the hybrid X-Wing,
MLKEM768_X25519): sealing one value with HPKE to the backend's public key (keys.hpke.seal, a key
encapsulation per value, which the service does), opening it (what the backend does, for one
value), and the size of a sealed 4-digit value, in bytes and in its token's characters.
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# The example backend's loader reads a private key file of either suite, as a backend does.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples" / "backend"))

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from receiver import load_private_key

from bench.server import machine
from keys import hpke
from keys.keyring import Keyring, parse_entries

CONTEXT = "calls.CallSession.card:CA" + "ab" * 16
DIGITS = "8264"


def raw_round(aead: AESGCM, aad: bytes) -> None:
    nonce = os.urandom(12)
    sealed = aead.encrypt(nonce, DIGITS.encode(), aad)
    aead.decrypt(nonce, sealed, aad).decode()


def raw_round_with_context(aead: AESGCM, context: str) -> None:
    nonce = os.urandom(12)
    sealed = aead.encrypt(nonce, DIGITS.encode(), f"sg1:bench|{context}".encode())
    aead.decrypt(nonce, sealed, f"sg1:bench|{context}".encode()).decode()


def keyring_round(ring: Keyring) -> None:
    ring.open(ring.seal(DIGITS, CONTEXT), CONTEXT)


def rate(fn, rounds: int) -> float:
    start = time.perf_counter()
    for _ in range(rounds):
        fn()
    return rounds / (time.perf_counter() - start)


def hpke_figures(kem: str, rounds: int, repeat: int) -> tuple[float, float, int, int]:
    """Seals and opens per second (best of ``repeat`` runs) with a new key pair of the suite,
    the size of a sealed value and the length of its token."""
    private_file, public = hpke.new_keypair(kem)
    (backend_key,) = hpke.parse_public_keys(f"bench:{public}")
    private = load_private_key(private_file)
    token = hpke.seal(DIGITS, "card", CONTEXT, backend_key)
    body = token.rsplit(".", 1)[1]
    sealed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    info = hpke.info("card", CONTEXT)
    suite = backend_key.kem.suite
    seal_rate = max(
        rate(lambda: hpke.seal(DIGITS, "card", CONTEXT, backend_key), rounds) for _ in range(repeat)
    )
    open_rate = max(
        rate(lambda: suite.decrypt(sealed, private, info=info), rounds) for _ in range(repeat)
    )
    return seal_rate, open_rate, len(sealed), len(token)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5, help="runs of all three, interleaved")
    args = parser.parse_args()

    ring = Keyring(parse_entries("bench:" + os.urandom(32).hex()))
    aead = AESGCM(os.urandom(32))
    aad = f"sg1:bench|{CONTEXT}".encode()
    rounds_of = {
        "raw AESGCM, associated data built once": lambda: raw_round(aead, aad),
        "raw AESGCM, associated data per value": lambda: raw_round_with_context(aead, CONTEXT),
        "keyring seal + open": lambda: keyring_round(ring),
    }
    # Interleaved (each repeat runs all three), so that a shared VM's drift hits them alike.
    runs = [
        {label: rate(fn, args.rounds) for label, fn in rounds_of.items()}
        for _ in range(args.repeat)
    ]
    hpke_rounds = max(1, args.rounds // 10)  # an X25519 agreement costs ~10x an AES-GCM seal
    suites = {kem: hpke_figures(kem, hpke_rounds, args.repeat) for kem in hpke.KEMS}
    print(f"machine         {machine()}")
    print(f"rounds per run  {args.rounds:,}, {args.repeat} runs interleaved (best shown)")
    for label in rounds_of:
        print(f"  {label:40s} {max(run[label] for run in runs):10,.0f} seal+open/s")
    ours = "keyring seal + open"
    for label in list(rounds_of)[:2]:
        ratios = [run[label] / run[ours] for run in runs]
        print(
            f"  keyring time / {label[12:]:28s} {statistics.median(ratios):.2f}x   "
            f"(target <= 1.50x; runs {min(ratios):.2f}x to {max(ratios):.2f}x)"
        )
    print(f"HPKE, HKDF-SHA256 and AES-256-GCM, {hpke_rounds:,} rounds per run (best shown)")
    for kem, (seal_rate, open_rate, size, length) in suites.items():
        print(f"  {kem} (a sealed value: {size:,} bytes, a token of {length:,} characters)")
        print(f"    {'seal to the backend (per value)':38s} {1e6 / seal_rate:8.0f} us")
        print(f"    {'open at the backend (per value)':38s} {1e6 / open_rate:8.0f} us")


if __name__ == "__main__":
    main()
