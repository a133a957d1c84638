"""Whether a card's last 4 exist shows in the timing: unknown card against known card with a
wrong PIN, on /voice/pin/ and /api/decrypt-gather.

    .venv/bin/python bench/timing.py [--db sqlite|postgres] [--tries 500]

In-process (Django's test client, signed webhooks). For each channel, three inputs are tried
``--tries`` times each, interleaved in a fresh random order every round: an unknown card (9999),
the demo card (1234) with a wrong PIN, and the demo card again as a second, separate series.
The two demo-card series are two interleaved runs of the same input: the difference of their
medians is the noise a real difference must stand out from. Only the answering request is timed
(for a call, its PIN step; the call's first steps run before). The lockout runs with its own
settings; before each try, untimed, every counter is emptied, so that every try reaches the PIN
check and finds the counters as a first try does (both cards' counters alike: a card's counter
exists whether the card is known or not). The lock's answer is the same for both cards by
construction, and is tested, not timed.

Printed per channel: each series' median in ms, the difference unknown - known, the difference
of the two known series, and a rank-sum z of unknown against known (|z| under 2: no difference
the test can see).
"""

from __future__ import annotations

import argparse
import logging
import math
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.callers import Callers, encrypt, setup
from bench.server import machine

SERIES = {"unknown": "9999", "known": "1234", "known again": "1234"}
WRONG = "0000"


def rank_sum_z(a: list[float], b: list[float]) -> float:
    """Mann-Whitney's z for ``a`` against ``b`` (normal approximation, ties averaged)."""
    ranked = sorted([(value, 0) for value in a] + [(value, 1) for value in b])
    ranks: list[float] = [0.0] * len(ranked)
    i = 0
    while i < len(ranked):
        j = i
        while j + 1 < len(ranked) and ranked[j + 1][0] == ranked[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2 + 1
        i = j + 1
    r_a = sum(rank for rank, (_, side) in zip(ranks, ranked, strict=True) if side == 0)
    n_a, n_b = len(a), len(b)
    u = r_a - n_a * (n_a + 1) / 2
    sd = math.sqrt(n_a * n_b * (n_a + n_b + 1) / 12)
    return (u - n_a * n_b / 2) / sd


def forget_failures() -> None:
    from accounts.models import Lockout

    Lockout.objects.update(failures=[], locked_until=None)


def voice_try(callers: Callers, card: str) -> float:
    forget_failures()
    params = callers.start(f"+1555{random.randrange(10**7):07d}")  # noqa: S311
    callers.step("/voice/card/", {**params, "Digits": card})
    start = time.perf_counter()
    callers.step("/voice/pin/", {**params, "Digits": WRONG})
    return time.perf_counter() - start


def api_try(callers: Callers, card: str) -> float:
    # Made before the clock starts: the tutorial's Function encrypts, not this service.
    body = {"encryptedCardDigits": encrypt(card), "encryptedPinDigits": encrypt(WRONG)}
    forget_failures()
    start = time.perf_counter()
    response = callers.client.post(
        "/api/decrypt-gather",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=callers.bearer,
    )
    elapsed = time.perf_counter() - start
    assert response.status_code == 404
    return elapsed


def measure(callers: Callers, attempt: Callable[[Callers, str], float], tries: int) -> None:
    times: dict[str, list[float]] = {name: [] for name in SERIES}
    names = list(SERIES)
    for name in names:  # a warm-up try each, not counted
        attempt(callers, SERIES[name])
    for _ in range(tries):
        random.shuffle(names)
        for name in names:
            times[name].append(attempt(callers, SERIES[name]) * 1000)
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(
        f"  medians: unknown {medians['unknown']:.3f} ms, known {medians['known']:.3f} ms, "
        f"known again {medians['known again']:.3f} ms"
    )
    print(
        f"  unknown - known: {medians['unknown'] - medians['known']:+.3f} ms "
        f"(z = {rank_sum_z(times['unknown'], times['known']):+.2f}); "
        f"known again - known (noise): {medians['known again'] - medians['known']:+.3f} ms "
        f"(z = {rank_sum_z(times['known again'], times['known']):+.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--tries", type=int, default=500)
    args = parser.parse_args()
    # No guessing_suspected row in the middle of a series: one try would append one more row.
    setup(args.db, "securegather_bench_timing", SECUREGATHER_GUESSING_FAILURES=str(10**9))
    logging.getLogger("django.request").setLevel(logging.ERROR)
    callers = Callers()
    print(f"{machine()}; {args.db}; {args.tries} tries of each series, interleaved")
    print("/voice/pin/ (the PIN step of a call):")
    measure(callers, voice_try, args.tries)
    print("/api/decrypt-gather:")
    measure(callers, api_try, args.tries)


if __name__ == "__main__":
    main()
