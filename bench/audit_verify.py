"""How long verify_audit_log takes: rows checked per second, to size its schedule.

    .venv/bin/python bench/audit_verify.py [--db postgres|sqlite] [--rows 50000]

Appends ``--rows`` audit rows through the audit chain (batches of 1,000, one transaction each) to
a fresh database, then verifies the whole log as ``verify_audit_log`` does, and prints the rate.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.server import bench_env, fresh_database, machine, manage

BATCH = 1000


def main() -> None:
    parser = argparse.ArgumentParser(description="Time a whole check of the audit chain.")
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--rows", type=int, default=50_000)
    args = parser.parse_args()

    env = bench_env(fresh_database(args.db, "securegather_bench_audit"))
    manage(env, "migrate", "--noinput")
    os.environ.update(env)

    import django

    django.setup()
    from django.db import transaction

    from audit.models import AuditEvent
    from audit.verification import verify_log

    print(f"{args.db}; {machine()}")
    started = time.perf_counter()
    for first in range(0, args.rows, BATCH):
        with transaction.atomic(), AuditEvent.batched():
            for i in range(first, min(first + BATCH, args.rows)):
                AuditEvent.record(
                    AuditEvent.Event.CARD_ENTERED,
                    AuditEvent.Outcome.SUCCESS,
                    call_sid=f"CA{i:032x}",
                    caller="**********06",
                )
    print(f"appended {args.rows} rows in {time.perf_counter() - started:.1f} s")

    started = time.perf_counter()
    report = verify_log()
    seconds = time.perf_counter() - started
    if not report.intact:
        raise SystemExit(f"the log does not verify: {report.first_problem}")
    per_row = seconds / report.checked
    print(
        f"verified {report.checked} rows in {seconds:.2f} s: {1 / per_row:,.0f} rows/s, "
        f"{per_row * 1e6:.0f} us a row; a million rows in about {per_row * 1e6:.0f} s"
    )


if __name__ == "__main__":
    main()
