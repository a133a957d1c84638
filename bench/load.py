"""Load: N concurrent simulated calls against gunicorn on PostgreSQL, for a fixed time.

    .venv/bin/python bench/load.py [--calls 50] [--seconds 30] [--workers 4] [--port 8250]
                                   [--database securegather_bench_load]

Recreates the PostgreSQL database --database (bench/server.py), migrates it, seeds the demo
account and starts gunicorn with --workers workers on 127.0.0.1.
Each simulated call is 4 signed webhooks back to back, with no pause for a caller to press keys
(so 50 of them weigh far more than 50 real calls): "a call comes in", card, PIN and the status
callback; 4 in 5 calls use the demo card and PIN, the others an unknown card. It prints calls
completed, errors and p50/p99 step latency, then compares the audit rows in the database with
the rows the served steps must have written: lost rows are a failure. gunicorn stops at the end,
whatever happens; the exit status is 1 on any error or lost row.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import loadgen
from bench.server import AUTH_TOKEN, bench_env, fresh_database, gunicorn, machine, manage

# Audit rows each step writes when it is served as expected (calls/views.py), in call order.
ROWS = {"start": 1, "card": 1, "pin": 2, "status": 1}


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in ROWS})
    served: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    calls: int = 0


class CallerThread:
    """One client thread: plays calls back to back until the deadline."""

    def __init__(self, port: int, token: str, tally: Tally, deadline: float, seed: int) -> None:
        self.tally, self.deadline = tally, deadline
        # Requests as loadgen builds them (Twilio's parameters and headers, signed before the
        # clock starts); a step slower than Twilio's 15 s counts as an error.
        self.requests = loadgen.Caller(f"http://127.0.0.1:{port}", token, "", timeout=15)
        self.random = random.Random(seed)  # noqa: S311  (which card a call uses; not a secret)

    def post(self, step: str, request: loadgen.Step) -> tuple[int, str]:
        started = time.perf_counter()
        status, body = self.requests.post(request)
        elapsed = time.perf_counter() - started
        with self.tally.lock:
            self.tally.latencies[step].append(elapsed)
        return status, body.decode()

    def call(self) -> None:
        known = self.random.random() < 0.8
        card, pin = ("1234", "4321") if known else ("9999", "4321")
        expect = {
            "start": "payment card",
            "card": "identification number",
            "pin": "AC12345678" if known else "not able to locate you",
            "status": "<Response />",
        }
        requests = self.requests.prepare(card, pin)
        for (step, words), request in zip(expect.items(), requests, strict=True):
            try:
                status, body = self.post(step, request)
            except OSError as exc:
                self.fail(f"{step}: {type(exc).__name__}")
                return
            if status != 200 or words not in body:
                self.fail(f"{step}: HTTP {status}" + ("" if status != 200 else " unexpected"))
                return
            with self.tally.lock:
                self.tally.served[step] += 1
        with self.tally.lock:
            self.tally.calls += 1

    def fail(self, what: str) -> None:
        with self.tally.lock:
            self.tally.errors[what] += 1

    def run(self) -> None:
        while time.monotonic() < self.deadline:
            self.call()


def audit_rows(url: str) -> int:
    """The calls' rows: not seed_demo's, nor the server's start and stop."""
    query = "SELECT count(*) FROM audit_auditevent WHERE channel = 'voice'"
    with psycopg.connect(url) as connection:
        row = connection.execute(query).fetchone()
    return row[0] if row else 0


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=50, help="concurrent calls (default 50)")
    parser.add_argument("--seconds", type=float, default=30, help="how long to start new calls")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (default 4)")
    parser.add_argument("--port", type=int, default=8250)
    parser.add_argument("--database", default="securegather_bench_load", help="recreated")
    args = parser.parse_args()

    database_url = fresh_database("postgres", args.database)
    env = bench_env(database_url)
    manage(env, "migrate", "--noinput", "--verbosity", "0")
    manage(env, "seed_demo")
    tally = Tally()
    with gunicorn(env, args.port, args.workers):
        deadline = time.monotonic() + args.seconds
        started = time.monotonic()
        callers = [
            threading.Thread(target=CallerThread(args.port, AUTH_TOKEN, tally, deadline, n).run)
            for n in range(args.calls)
        ]
        for thread in callers:
            thread.start()
        for thread in callers:
            thread.join()
        elapsed = time.monotonic() - started

    found = audit_rows(database_url)
    expected = sum(ROWS[step] * count for step, count in tally.served.items())
    steps = sum(tally.served.values())
    all_latencies = [x for values in tally.latencies.values() for x in values]
    errors = sum(tally.errors.values())
    print(f"machine        {machine()}")
    print(
        f"load           {args.calls} concurrent calls for {args.seconds:g} s, "
        f"{args.workers} gunicorn workers, PostgreSQL"
    )
    print(
        f"calls          {tally.calls} completed in {elapsed:.1f} s "
        f"({tally.calls / elapsed:.1f} calls/s, {steps / elapsed:.0f} steps/s)"
    )
    print(f"errors         {errors}" + (f"  {dict(tally.errors)}" if errors else ""))
    for step, values in tally.latencies.items():
        print(
            f"latency {step:<7}p50 {percentile(values, 50) * 1000:6.1f} ms   "
            f"p99 {percentile(values, 99) * 1000:6.1f} ms   ({len(values)} requests)"
        )
    print(
        f"latency all    p50 {percentile(all_latencies, 50) * 1000:6.1f} ms   "
        f"p99 {percentile(all_latencies, 99) * 1000:6.1f} ms   "
        f"mean {statistics.fmean(all_latencies or [0]) * 1000:.1f} ms"
    )
    print(
        f"audit rows     {found} in the database, {expected} written by {steps} steps served: "
        f"{expected - found} lost"
    )
    return 1 if errors or found != expected else 0


if __name__ == "__main__":
    sys.exit(main())
