"""How long `import_accounts` takes for a file of accounts, and the memory it needs.

    .venv/bin/python bench/import_accounts.py [--db postgres|sqlite] [--rows 10000]

Writes a CSV of ``--rows`` accounts (a third with a caller number), migrates a fresh database and
imports the file through the command, twice: once timed, and once, into an emptied table, under
tracemalloc for the peak of Python's allocations (tracemalloc slows the run it watches, so that
run's time is not the figure). Prints rows per second, the peak and the process's peak resident
memory.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.server import bench_env, fresh_database, machine, manage


def write_csv(path: Path, rows: int) -> None:
    with path.open("w") as out:
        out.write("account_number,balance,card_last4,pin,caller_numbers\n")
        for n in range(rows):
            caller = f"+1555{n:07d}" if n % 3 == 0 else ""
            out.write(f"AC4{n:07d},{n % 1000}.{n % 100:02d},{n % 10000:04d},")
            out.write(f"{(n * 7919) % 10000:04d},{caller}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description="Time import_accounts and measure its memory.")
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()

    # One role: the benchmark migrates and imports as the same login.
    database = fresh_database(args.db, "securegather_bench_import")
    env = bench_env(database, SECUREGATHER_DATABASE_ONE_ROLE="true")
    manage(env, "migrate", "--noinput")
    os.environ.update(env)

    import django

    django.setup()
    from django.core.management import call_command

    from accounts.models import Account

    print(f"{args.db}; {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "accounts.csv"
        write_csv(path, args.rows)
        print(f"{args.rows} rows, {path.stat().st_size / 1e6:.1f} MB of CSV")

        started = time.perf_counter()
        call_command("import_accounts", str(path), stdout=io.StringIO())
        seconds = time.perf_counter() - started
        assert Account.objects.count() == args.rows

        Account.objects.all().delete()
        tracemalloc.start()
        call_command("import_accounts", str(path), stdout=io.StringIO())
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

    # ru_maxrss is in KiB on Linux.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"imported {args.rows} rows in {seconds:.2f} s ({args.rows / seconds:,.0f} rows/s); "
        f"peak of Python allocations during the import {peak / 1e6:.1f} MB "
        f"({peak / args.rows / 1e3:.1f} kB a row); process peak RSS {rss:.0f} MB"
    )


if __name__ == "__main__":
    main()
