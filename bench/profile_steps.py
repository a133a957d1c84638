"""Profile the call steps in-process: time per step, queries per step, and where the time goes.

    .venv/bin/python bench/profile_steps.py [--db postgres|sqlite] [--calls 200] [--top 25]

Runs the four webhook steps of a verified call through Django's test client (no HTTP server), on
a fresh database, next to the baseline view, then profiles 100 calls with cProfile and prints the
functions with the most time of their own. Before that it times, alone, what every signed step
does before its own work: reading the form (Django's QueryDict) and checking the signature
(has_valid_signature, which runs twilio's RequestValidator) of a request with Twilio's parameters.
What it finds is in bench/README.md.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.loadgen import REFERENCES, Caller, Step
from bench.server import AUTH_TOKEN, bench_env, fresh_database, manage

# The names of loadgen.STEPS, in its order.
STEP_NAMES = ("incoming", "card", "pin", "status")


def headers_of(step: Step) -> dict[str, str]:
    """X-Twilio-Signature and the rest of the request's headers; the body's type apart."""
    return {k: v for k, v in step.headers.items() if k != "Content-Type"}


def entry_costs(step: Step, number: int = 5000) -> tuple[float, float]:
    """Microseconds, best of 5 runs, to read ``step``'s form and to check its signature."""
    from django.http import QueryDict
    from django.test import RequestFactory

    from calls.webhooks import has_valid_signature

    request = RequestFactory(HTTP_HOST="127.0.0.1").post(
        step.path,
        step.body,
        content_type="application/x-www-form-urlencoded",
        headers=headers_of(step),
    )
    if not has_valid_signature(request):  # also reads request.POST, once, before the timing
        raise SystemExit(f"{step.path}: the signature check refused the load generator's request")
    form = min(timeit.repeat(lambda: QueryDict(step.body), number=number, repeat=5)) / number
    check = min(timeit.repeat(lambda: has_valid_signature(request), number=number, repeat=5))
    return form * 1e6, check / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description="Profile the call steps in-process.")
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()

    env = bench_env(fresh_database(args.db, "securegather_bench_profile"))
    manage(env, "migrate", "--noinput")
    manage(env, "seed_demo")
    os.environ.update(env)

    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="127.0.0.1")
    counts: dict[str, int] = {}
    callers = {
        baseline: Caller("http://127.0.0.1", AUTH_TOKEN, REFERENCES["baseline"] if baseline else "")
        for baseline in (True, False)
    }

    def call(baseline: bool = False, count: bool = False) -> None:
        steps = callers[baseline].prepare("1234", "4321")
        for name, step in zip(STEP_NAMES, steps, strict=True):
            with CaptureQueriesContext(connection) as queries:
                response = client.post(
                    step.path,
                    step.body,
                    content_type="application/x-www-form-urlencoded",
                    headers=headers_of(step),
                )
            if response.status_code != 200:
                raise SystemExit(f"{step.path} answered {response.status_code}")
            if count:
                counts[name] = len(queries.captured_queries)

    for _ in range(20):
        call()
        call(baseline=True)
    call(count=True)
    print(f"{args.db}: queries per step  " + "  ".join(f"{k} {v}" for k, v in counts.items()))
    for label, baseline in (("baseline", True), ("secured", False)):
        started = time.perf_counter()
        for _ in range(args.calls):
            call(baseline=baseline)
        per_step = (time.perf_counter() - started) / (args.calls * len(STEP_NAMES)) * 1000
        print(f"{label:9s} {per_step:6.3f} ms per step (in-process, {args.calls} calls)")
    step = callers[False].prepare("1234", "4321")[1]
    form, check = entry_costs(step)
    print(
        f"every signed step, first: reading the form {form:.0f} µs, checking its signature "
        f"{check:.0f} µs ({len(step.body.split('&'))} parameters)"
    )
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(100):
        call()
    profile.disable()
    pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
