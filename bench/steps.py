"""Cost of security per call step: secured steps against a reference view on the same server.

    .venv/bin/python bench/steps.py [--db postgres|sqlite] [--calls 400] [--concurrency 8]
                                    [--rounds 5] [--chunks 8] [--reference floor-step]

Starts gunicorn (the project's gunicorn.conf.py and its worker count, 5 on 2 cores) on a fresh
database, then, from a load generator in a process of its own, plays (a) full signed calls
through every step (incoming, card, PIN with account resolution, status callback) and (b) the
same number of requests to the reference. By default that is /bench/floor/step/, the least
database work a step that keeps its call's state and audits must do (bench.urls): its answer
after an upsert of the call's row and a bare append to a hash chain, with no signature, no
sealing and no MAC. ``--reference baseline`` holds the steps against a Django view with no
database at all instead, and ``floor-write`` or ``floor-append`` against the smaller floors.

Saturated: closed loop, requests back to back. Each round alternates the reference and secured
in chunks, each timed on its own, since the speed of a shared VM drifts within seconds: a slow
spell then falls on both alike. Target, against floor-step on PostgreSQL: median secured/floor-step
throughput >= 0.45. The other references have no target: their figures place the steps' cost.
Where /proc/stat exists (Linux), each line also gives the CPU a step cost the whole machine: the
busy time of every core (the server, the database, the load generator) over the steps served.
Realistic: open loop, a new call every 30 ms. Target: secured p99 < 50 ms, no errors.
"""

from __future__ import annotations

import argparse
import multiprocessing
import runpy
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import loadgen
from bench.server import AUTH_TOKEN, ROOT, bench_env, fresh_database, gunicorn, machine, manage


def in_own_process(fn, *args):  # type: ignore[no-untyped-def]
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(fn, args)


def configured_workers() -> int:
    """The worker count the project's gunicorn.conf.py gives this machine."""
    return int(runpy.run_path(str(ROOT / "gunicorn.conf.py"))["workers"])


def line(label: str, r: dict[str, float]) -> str:
    cpu = f"  CPU {r['cpu_ms']:5.2f} ms/step" if "cpu_ms" in r else ""
    return (
        f"  {label:12s} {r['steps']:6.0f} steps  {r['steps_per_s']:8.1f} steps/s  "
        f"p50 {r['p50_ms']:6.1f} ms  p99 {r['p99_ms']:6.1f} ms  errors {r['errors']:.0f}{cpu}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Secured call steps against a baseline view.")
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--calls", type=int, default=400, help="calls per phase (4 steps each)")
    parser.add_argument("--concurrency", type=int, default=8, help="closed-loop callers")
    parser.add_argument("--interval", type=float, default=0.030, help="open loop: s between calls")
    parser.add_argument(
        "--workers",
        type=int,
        default=configured_workers(),
        help="gunicorn workers (default: what gunicorn.conf.py starts on this machine)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="saturated rounds, each alternating the reference's and secured chunks",
    )
    parser.add_argument(
        "--chunks",
        type=int,
        default=8,
        help="saturated: each round alternates the reference and secured in this many chunks",
    )
    parser.add_argument(
        "--reference",
        choices=list(loadgen.REFERENCES),
        default="floor-step",
        help="the view the steps are held against: a floor (bench.urls), or the baseline",
    )
    parser.add_argument("--port", type=int, default=8500)
    args = parser.parse_args()
    name, reference = args.reference, loadgen.REFERENCES[args.reference]
    target = "target >= 0.45" if name == "floor-step" else "no target"

    env = bench_env(fresh_database(args.db, "securegather_bench_steps"))
    manage(env, "migrate", "--noinput")
    manage(env, "seed_demo")
    print(
        f"{args.db}, {args.workers} gunicorn workers, {args.calls} calls ({args.calls * 4} "
        f"steps) per phase; {machine()}"
    )
    with gunicorn(env, args.port, args.workers) as url:
        # One short warm-up of each, so imports and connections are not measured.
        in_own_process(loadgen.closed_loop, url, AUTH_TOKEN, "", 2, 20)
        in_own_process(loadgen.closed_loop, url, AUTH_TOKEN, reference, 2, 20)
        print(
            f"saturated (closed loop, {args.concurrency} callers back to back), "
            f"{args.rounds} rounds, each alternating {name} and secured in {args.chunks} chunks"
        )
        ratios, cpu = [], []
        for _ in range(args.rounds):
            base, secured = in_own_process(
                loadgen.closed_loop_alternating,
                url,
                AUTH_TOKEN,
                reference,
                args.concurrency,
                args.calls,
                args.chunks,
            )
            ratios.append(secured["steps_per_s"] / base["steps_per_s"])
            if "cpu_ms" in base and "cpu_ms" in secured:
                cpu.append((base["cpu_ms"], secured["cpu_ms"]))
            print(line(name, base))
            print(line("secured", secured))
            print(f"  secured/{name} throughput {ratios[-1]:.2f}")
        print(
            f"  median secured/{name} throughput {statistics.median(ratios):.2f}   "
            f"({target}; rounds {min(ratios):.2f} to {max(ratios):.2f})"
        )
        if cpu:
            # The machine's busy CPU over steps served: with every core busy, it sets the ratio.
            print(
                f"  median CPU per step, whole machine: {name} "
                f"{statistics.median(b for b, _ in cpu):.2f} ms, secured "
                f"{statistics.median(s for _, s in cpu):.2f} ms; {name}/secured "
                f"{statistics.median(b / s for b, s in cpu):.2f}"
            )
        rate = 4 / args.interval
        print(
            f"realistic (open loop, a call every {args.interval * 1000:.0f} ms ≈ {rate:.0f} "
            "steps/s)"
        )
        base = in_own_process(
            loadgen.open_loop, url, AUTH_TOKEN, reference, args.interval, args.calls
        )
        secured = in_own_process(loadgen.open_loop, url, AUTH_TOKEN, "", args.interval, args.calls)
        print(line(name, base))
        print(line("secured", secured))
        print(
            f"  secured p99 {secured['p99_ms']:.1f} ms   (target < 50 ms), "
            f"errors {secured['errors']:.0f}   (target 0)"
        )


if __name__ == "__main__":
    main()
