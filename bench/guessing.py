"""An attacker who knows the demo card's last 4, for 30 simulated days: PIN checks it gets.

    .venv/bin/python bench/guessing.py [--db sqlite|postgres] [--days 30]

In-process (Django's test client, signed webhooks) with the clock moved by time-machine, never
slept. Each strategy starts from no counters and runs for ``--days``; the attacker never guesses
the right PIN, so every check it gets is one more try at it. Strategies:

- paced: a fresh spoofed E.164 number for every try, voice calls and /api/decrypt-gather
  alternating, one try every 31 minutes (just past each 30-minute lock);
- anonymous: every call from "anonymous", one every 31 minutes;
- hammer: a fresh number every 5 minutes, voice and API alternating;
- spread: 4 tries a day from fresh numbers, under the 5-a-day lock.

Through all of them the owner calls twice a day from the account's registered number with full
SHAKEN/STIR attestation (TN-Validation-Passed-A) and the right PIN. Printed per strategy: the
PIN checks of the account (counted where the PIN is compared, Account.check_pin), the most in
any 30 days (target: at most 10), and the owner's calls that got through.
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.callers import Callers, setup
from bench.server import machine

START = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
OWNER = "+15005550006"
# A wrong PIN for every try: the attacker's tries are all checks that fail.
WRONG = "0000"


def strategies() -> dict[str, tuple[timedelta, str]]:
    """name: (time between tries, who calls: "fresh", "anonymous")."""
    return {
        "paced": (timedelta(minutes=31), "fresh"),
        "anonymous": (timedelta(minutes=31), "anonymous"),
        "hammer": (timedelta(minutes=5), "fresh"),
        "spread": (timedelta(hours=6), "fresh"),
    }


def run(name: str, every: timedelta, who: str, days: int) -> dict[str, object]:
    import time_machine

    from accounts.models import Account, GuessingWindow, Lockout

    Lockout.objects.all().delete()
    GuessingWindow.objects.all().delete()
    account = Account.objects.get(number="AC12345678")
    account.caller_numbers = [OWNER]
    account.save()
    checks: list[datetime] = []
    real_check = Account.check_pin

    def counted(self: Account, pin: str) -> bool:
        if self.number == "AC12345678" and pin == WRONG:
            checks.append(now)
        return real_check(self, pin)

    Account.check_pin = counted  # type: ignore[method-assign]
    callers = Callers()
    owner_tries = owner_through = 0
    end = START + timedelta(days=days)
    now, n = START, 0
    next_owner = START + timedelta(hours=9)
    try:
        with time_machine.travel(START, tick=False) as clock:
            while now < end:
                if now >= next_owner:
                    owner_tries += 1
                    words = callers.call(OWNER, "1234", "4321", "TN-Validation-Passed-A")
                    owner_through += "AC12345678" in words
                    next_owner += timedelta(hours=12)
                caller = "anonymous" if who == "anonymous" else f"+1555{n:07d}"
                if who == "fresh" and n % 2:
                    callers.api("1234", WRONG)
                else:
                    callers.call(caller, "1234", WRONG)
                n += 1
                now += every
                clock.move_to(now)
    finally:
        Account.check_pin = real_check  # type: ignore[method-assign]
    month = timedelta(days=30)
    most = max((sum(s <= t < s + month for t in checks) for s in checks), default=0)
    return {
        "strategy": name,
        "tries": n,
        "checks": len(checks),
        "most in 30 days": most,
        "owner through": f"{owner_through}/{owner_tries}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args()
    setup(args.db, "securegather_bench_guessing")
    # Every refused try is a 404 that Django would log as a warning.
    logging.getLogger("django.request").setLevel(logging.ERROR)
    print(f"{machine()}; {args.db}; {args.days} simulated days per strategy")
    print(f"{'strategy':<10} {'tries':>6} {'PIN checks':>10} {'most in 30 d':>12} {'owner':>8}")
    for name, (every, who) in strategies().items():
        row = run(name, every, who, args.days)
        print(
            f"{name:<10} {row['tries']:>6} {row['checks']:>10} {row['most in 30 days']:>12} "
            f"{row['owner through']:>8}"
        )


if __name__ == "__main__":
    main()
