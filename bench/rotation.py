"""Benchmark: `manage.py rotate_keys` against a minimal rotation written directly.

Fills a PostgreSQL database of its own with N call sessions whose card is sealed under an old key,
runs `manage.py rotate_keys` in a subprocess (its wall time and peak resident memory), fills again
and times a reference that does the same work with nothing between it and the database: psycopg,
cryptography's AESGCM, keyset batches locked FOR UPDATE SKIP LOCKED and written with one
`UPDATE ... FROM (VALUES ...)` each. Prints both rates, their ratio and the command's peak memory.

    .venv/bin/python bench/rotation.py --rows 100000
    .venv/bin/python bench/rotation.py --rows 1000000 \\
        --database-url postgres://postgres@127.0.0.1:5432/securegather_keys_bench
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
OLD = "old:" + "a1" * 32
NEW = "new:" + "b2" * 32
CONTEXT = "calls.CallSession.card:"
FILL_CHUNK = 10_000


def seal_key(entry: str) -> tuple[str, AESGCM]:
    """The AESGCM object the keyring derives for sealing (HKDF-SHA256, info securegather:seal)."""
    kid, hexkey = entry.split(":")
    info = b"securegather:seal"
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info)
    return kid, AESGCM(hkdf.derive(bytes.fromhex(hexkey)))


def seal(kid: str, aead: AESGCM, plaintext: bytes, context: str) -> str:
    nonce = os.urandom(12)
    body = aead.encrypt(nonce, plaintext, f"sg1:{kid}|{context}".encode())
    return f"sg1:{kid}:{nonce.hex()}{body.hex()}"


def unseal(kid: str, aead: AESGCM, token: str, context: str) -> bytes:
    raw = bytes.fromhex(token.rsplit(":", 1)[1])
    return aead.decrypt(raw[:12], raw[12:], f"sg1:{kid}|{context}".encode())


def ensure_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def manage(env: dict[str, str], *args: str) -> tuple[str, float]:
    """Run a management command: its output and its own peak resident memory in MiB."""
    with tempfile.TemporaryFile("w+") as out:
        process = subprocess.Popen(  # noqa: S603 (our own manage.py, fixed arguments)
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
        _, status, usage = os.wait4(process.pid, 0)
        out.seek(0)
        output = out.read()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"manage.py {' '.join(args)} failed:\n{output}")
    return output, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def fill(url: str, rows: int) -> None:
    """N sessions awaiting their PIN, each card sealed under OLD, written with COPY."""
    kid, aead = seal_key(OLD)
    now = datetime.now(UTC)
    with psycopg.connect(url) as conn:
        conn.execute("TRUNCATE calls_callsession, securegather_keyrecord RESTART IDENTITY")
        columns = (
            "call_sid, account_sid, caller, language, state, outcome, tries, card, "
            "account_number, idempotency_token, last_answer, created_at, updated_at"
        )
        with conn.cursor().copy(f"COPY calls_callsession ({columns}) FROM STDIN") as copy:
            for n in range(rows):
                sid = f"CA{n:032x}"
                card = seal(kid, aead, f"{n % 10_000:04d}".encode(), CONTEXT + sid)
                copy.write_row((sid, "", "", "", "awaiting_pin", "", 0, card, "", "", "", now, now))
        conn.execute("ANALYZE calls_callsession")


def reference(url: str, batch_size: int) -> int:
    """The same rotation with nothing in between: returns rows rotated."""
    old_kid, old = seal_key(OLD)
    new_kid, new = seal_key(NEW)
    done, last = 0, 0
    with psycopg.connect(url) as conn:
        while True:
            with conn.transaction():
                rows = conn.execute(
                    "SELECT id, call_sid, card FROM calls_callsession "
                    "WHERE card LIKE %s AND id > %s ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
                    [f"sg1:{old_kid}:%", last, batch_size],
                ).fetchall()
                if not rows:
                    return done
                values = []
                for pk, sid, token in rows:
                    plaintext = unseal(old_kid, old, token, CONTEXT + sid)
                    values += [pk, seal(new_kid, new, plaintext, CONTEXT + sid)]
                placeholders = ", ".join(["(%s::bigint, %s)"] * len(rows))
                conn.execute(
                    f"UPDATE calls_callsession AS t SET card = v.card "  # noqa: S608
                    f"FROM (VALUES {placeholders}) AS v(id, card) WHERE t.id = v.id",
                    values,
                )
                last = rows[-1][0]
                done += len(rows)


def under(url: str, kid: str) -> int:
    with psycopg.connect(url) as conn:
        query = "SELECT count(*) FROM calls_callsession WHERE card LIKE %s"
        row = conn.execute(query, [f"sg1:{kid}:%"]).fetchone()
        return row[0] if row else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument(
        "--database-url",
        default="postgres://postgres@127.0.0.1:5432/securegather_keys_bench",
        help="a PostgreSQL database of its own: the benchmark empties its call sessions",
    )
    args = parser.parse_args()
    url = args.database_url
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SECRET_KEY": "bench-only-secret-key",
        "TWILIO_AUTH_TOKEN": "bench-only-token",
        "SECUREGATHER_KEYS": f"{NEW},{OLD}",
        "SECUREGATHER_KEYS_FILE": "",
        "DJANGO_ENV_FILE": "/dev/null",  # a developer .env must not change what is measured
    }
    ensure_database(url)
    manage(env, "migrate", "--noinput")

    print(f"{args.rows} sealed values, batches of {args.batch_size}, PostgreSQL at {url}")
    started = time.perf_counter()
    fill(url, args.rows)
    print(f"filled in {time.perf_counter() - started:.1f}s")

    _, startup_mib = manage(env, "check")
    started = time.perf_counter()
    output, peak_mib = manage(env, "rotate_keys", "--batch-size", str(args.batch_size))
    command_seconds = time.perf_counter() - started
    own = re.search(r"in ([0-9.]+)s \(", output)
    assert under(url, "new") == args.rows and under(url, "old") == 0, output

    fill(url, args.rows)
    started = time.perf_counter()
    rotated = reference(url, args.batch_size)
    reference_seconds = time.perf_counter() - started
    assert rotated == args.rows and under(url, "new") == args.rows

    print(
        f"rotate_keys: {command_seconds:.1f}s wall ({own.group(1) if own else '?'}s after start-up)"
        f", {args.rows / command_seconds:,.0f} values/s, peak RSS {peak_mib:.0f} MiB "
        f"(manage.py check alone: {startup_mib:.0f} MiB)"
    )
    print(f"reference:   {reference_seconds:.1f}s, {args.rows / reference_seconds:,.0f} values/s")
    print(f"ratio (rotate_keys time / reference time): {command_seconds / reference_seconds:.2f}")


if __name__ == "__main__":
    main()
