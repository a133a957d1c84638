"""Seal and open through the project's keyring against raw cryptography AESGCM, in one run.

    .venv/bin/python bench/crypto.py [--rounds 200000]

Both sides do the work a call step does with one value: a fresh 96-bit nonce, AES-256-GCM
encryption of 4 digits with associated data, then decryption. Raw AESGCM is timed twice: with its
associated data built once (the floor), and built per value from the record's context, as any use
that binds a value to its record must. The keyring adds the token text (header, hex) and the key
lookup. Target: keyring seal+open within 1.5x of raw AESGCM.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from securegather.keyring import Keyring, parse_entries

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of N, to skip noise")
    args = parser.parse_args()

    ring = Keyring(parse_entries("bench:" + os.urandom(32).hex()))
    aead = AESGCM(os.urandom(32))
    aad = f"sg1:bench|{CONTEXT}".encode()
    best = {
        "raw AESGCM, associated data built once": lambda: raw_round(aead, aad),
        "raw AESGCM, associated data per value": lambda: raw_round_with_context(aead, CONTEXT),
        "keyring seal + open": lambda: keyring_round(ring),
    }
    rates = {
        label: max(rate(fn, args.rounds) for _ in range(args.repeat)) for label, fn in best.items()
    }
    print(f"rounds per run  {args.rounds:,} (best of {args.repeat})")
    for label, value in rates.items():
        print(f"  {label:40s} {value:10,.0f} seal+open/s")
    ours = rates["keyring seal + open"]
    for label in list(rates)[:2]:
        ratio = rates[label] / ours
        print(f"  keyring time / {label[12:]:28s} {ratio:.2f}x   (target <= 1.50x)")


if __name__ == "__main__":
    main()
