"""Call steps resolved by the user's backend: the HTTP resolver against the local example backend.

    .venv/bin/python bench/backend.py [--db postgres|sqlite] [--calls 400] [--interval 0.030]
        [--receiver python|node]

Writes a key pair of each suite (X25519, and the hybrid MLKEM768_X25519) and a signing secret
to a temporary directory, starts the example backend with both keys (examples/backend/server.py,
or examples/backend-node/server.mjs with ``--receiver node``; either holds the demo account) and
gunicorn with SECUREGATHER_RESOLVER=accounts.resolvers.HttpResolver on a fresh database, once per
suite, then starts a call every 30 ms (open loop) and reports p50 and p99 over all steps and for
the PIN step alone, whose request to the backend is the cost this resolver adds; then the same
against the database resolver on a fresh database with the demo account, for comparison. Target:
p99 < 50 ms with either suite, no errors.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# The example backend's modules import each other by plain name, as they do when it runs.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples" / "backend"))

import launch  # examples/backend/launch.py

from bench import loadgen
from bench.server import AUTH_TOKEN, bench_env, fresh_database, gunicorn, machine, manage
from bench.steps import configured_workers
from keys import hpke


def example_backend(
    directory: Path, secret: str, node: bool
) -> tuple[subprocess.Popen[str], str, str]:
    """The example backend on a port the OS picks, with a key of each suite: its process, URL
    and public key entries."""
    entries, files = [], []
    for kid, kem in (("x1", "X25519"), ("h1", "MLKEM768_X25519")):
        private_file, public = hpke.new_keypair(kem)
        files.append(directory / f"backend-{kid}.pem")
        hpke.write_private_key(files[-1], private_file)
        entries.append(f"{kid}:{public}")
    process, url = launch.start(files, secret, node=node)
    return process, url, ",".join(entries)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] * 1000


def open_loop(url: str, interval: float, calls: int) -> tuple[list[float], list[float], int]:
    """A call every ``interval`` s: every step's latency, the PIN steps', and the errors."""
    caller = loadgen.Caller(url, AUTH_TOKEN, "")
    prepared = [caller.prepare("1234", "4321") for _ in range(calls)]
    latencies: list[float] = []
    pins: list[float] = []
    errors = 0
    lock = threading.Lock()

    def play(steps: list[loadgen.Step]) -> None:
        nonlocal errors
        for step in steps:
            started = time.perf_counter()
            ok = caller.answered(step)
            took = time.perf_counter() - started
            with lock:
                latencies.append(took)
                errors += not ok
                if step.resolves:
                    pins.append(took)

    started = time.perf_counter()
    with ThreadPoolExecutor(256) as pool:
        for i, steps in enumerate(prepared):
            time.sleep(max(0.0, started + i * interval - time.perf_counter()))
            pool.submit(play, steps)
    return latencies, pins, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--interval", type=float, default=0.030, help="s between calls")
    parser.add_argument("--workers", type=int, default=configured_workers())
    parser.add_argument("--port", type=int, default=8501)
    parser.add_argument("--receiver", choices=["python", "node"], default="python")
    args = parser.parse_args()

    secret = secrets.token_urlsafe(32)
    results = {}
    with tempfile.TemporaryDirectory(prefix="sg-bench-backend-") as directory:
        node = args.receiver == "node"
        backend, backend_url, public = example_backend(Path(directory), secret, node)
        try:
            resolvers: dict[str, dict[str, str]] = {
                f"Http {kem}": {
                    "SECUREGATHER_RESOLVER": "accounts.resolvers.HttpResolver",
                    "SECUREGATHER_BACKEND_URL": backend_url,
                    "SECUREGATHER_BACKEND_PUBLIC_KEYS": public,
                    "SECUREGATHER_BACKEND_KEM": kem,
                    "SECUREGATHER_BACKEND_SECRET": secret,
                }
                for kem in hpke.KEMS
            }
            resolvers["DatabaseResolver"] = {}
            print(
                f"{args.db}, {args.workers} gunicorn workers, {args.calls} calls, "
                f"{args.receiver} receiver; {machine()}"
            )
            for name, extra in resolvers.items():
                env = bench_env(
                    fresh_database(args.db, "securegather_bench_backend"),
                    # The benchmark's own database, one role for everything (audit.E002 off).
                    SECUREGATHER_DATABASE_ONE_ROLE="true",
                    **extra,
                )
                manage(env, "migrate", "--noinput")
                if not extra:
                    manage(env, "seed_demo")
                with gunicorn(env, args.port, args.workers) as url:
                    open_loop(url, args.interval, 20)  # warm-up: imports, connections
                    results[name] = open_loop(url, args.interval, args.calls)
        finally:
            backend.terminate()
            backend.wait(timeout=10)
    print(f"realistic (open loop, a call every {args.interval * 1000:.0f} ms)")
    for name, (latencies, pins, errors) in results.items():
        print(
            f"  {name:20s} all steps p50 {statistics.median(latencies) * 1000:.1f} ms, "
            f"p99 {percentile(latencies, 0.99):.1f} ms;  PIN step p50 "
            f"{statistics.median(pins) * 1000:.1f} ms, p99 {percentile(pins, 0.99):.1f} ms;  "
            f"errors {errors}"
        )
    print("  target: HttpResolver p99 < 50 ms with either suite, no errors")


if __name__ == "__main__":
    main()
