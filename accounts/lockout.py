"""Lockout policy: failed verifications counted per caller number and per account, in the database.

PCI DSS v4.0 8.3.4 asks for a lock after no more than 10 invalid attempts, for at least 30
minutes; the defaults are 5 failures within 24 hours → locked for 30 minutes. Every counter
lives in accounts.Lockout and is row-locked for the whole of a verification, so workers on any
number of hosts share it and concurrent calls cannot slip extra guesses past the limit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from accounts.models import E164, Lockout
from audit.models import AuditEvent
from audit.phones import WITHHELD

# Only a dialable (E164) number is a caller of its own. "anonymous", "client:…" and withheld
# numbers would all share one counter, and one caller's failures would lock all of them out.


def limit() -> int:
    return settings.SECUREGATHER_LOCKOUT_FAILURES


def window() -> timedelta:
    return timedelta(seconds=settings.SECUREGATHER_LOCKOUT_WINDOW)


def duration() -> timedelta:
    return timedelta(seconds=settings.SECUREGATHER_LOCKOUT_DURATION)


def counts_caller(caller: str) -> bool:
    return E164.fullmatch(caller) is not None and caller not in WITHHELD


def caller_lock(caller: str) -> Lockout | None:
    """The caller's lock, if one holds now: read without a row lock, to warn at the start."""
    if not counts_caller(caller):
        return None
    row = Lockout.objects.filter(scope=Lockout.Scope.CALLER, key=caller).first()
    return row if row is not None and row.is_locked(timezone.now()) else None


# Tries at taking a verification's counters when some vanish under it (see Counters.hold).
_ATTEMPTS = 3


class CountersVanished(Exception):
    """A verification's counters were deleted each time it locked them: it checks no PIN."""


@dataclass
class Counters:
    """The row-locked counters of one verification. Use inside transaction.atomic()."""

    rows: list[Lockout]
    now: datetime

    @classmethod
    def hold(
        cls, caller: str, account_numbers: Iterable[str], channel: str = AuditEvent.Channel.VOICE
    ) -> Counters:
        """Take (creating if needed) every counter, in one order, row-locked until commit.

        A lock found expired is cleared, its row on the ``channel`` that found it."""
        keys = {(Lockout.Scope.ACCOUNT.value, number) for number in account_numbers}
        if counts_caller(caller):
            keys.add((Lockout.Scope.CALLER.value, caller))
        if not keys:
            # An unknown card from a caller without a number of its own: nothing to count. (An
            # empty filter below would match, lock and count against every counter there is.)
            return cls([], timezone.now())
        # Every counter exists before it is locked (INSERT … ON CONFLICT DO NOTHING, no
        # savepoint), so even a caller's first verification has a row to wait on.
        # Inserted in the locks' order too: in a set's order, which differs between processes,
        # two steps creating the same two counters could each wait on the other's.
        # A counter can vanish between its INSERT and its lock: purge_sessions deletes idle ones,
        # and a lock that waited on its DELETE finds no row (PostgreSQL). Counted on nothing, the
        # failure would be lost, so it is inserted and locked again; made now, it is not idle.
        # (That INSERT comes with locks held: a step inserting the same counter and waiting on
        # one of them is a deadlock, which PostgreSQL ends by rolling one step back.)
        ordered = sorted(keys)
        matches = Q()
        for scope, key in ordered:
            matches |= Q(scope=scope, key=key)
        for _ in range(_ATTEMPTS):
            Lockout.objects.bulk_create(
                [Lockout(scope=scope, key=key) for scope, key in ordered], ignore_conflicts=True
            )
            # Locked in the same order (scope, key): two verifications that share counters never
            # wait on each other in turn.
            counters = Lockout.objects.select_for_update().filter(matches).order_by("scope", "key")
            rows = list(counters)
            if len(rows) == len(keys):
                break
        else:
            raise CountersVanished(f"{len(keys) - len(rows)} lockout counter(s) kept vanishing")
        # The time once every row is held: a failure counted while this one waited is older.
        now = timezone.now()
        for row in rows:
            if row.expire(now, channel=channel):
                row.save()
        return cls(rows, now)

    def lock(self) -> Lockout | None:
        """The first counter that is locked now, if any."""
        return next((row for row in self.rows if row.is_locked(self.now)), None)

    def fail(self, **audit: Any) -> bool:
        """Count the failure on every counter; True when it locked any of them."""
        locked = False
        for row in self.rows:
            locked |= row.fail(
                self.now, limit=limit(), window=window(), duration=duration(), **audit
            )
            row.save()
        return locked

    def succeed(self, account_number: str) -> None:
        """The verified account starts afresh; the caller's count does not (see README)."""
        for row in self.rows:
            if row.scope == Lockout.Scope.ACCOUNT and row.key == account_number and row.failures:
                row.forget_failures()
                row.save()


def lift(target: str, by: str, **detail: Any) -> list[Lockout]:
    """Lift every lock (and count) held by a caller number or an account number."""
    rows = list(Lockout.objects.filter(key=target).exclude(locked_until=None, failures=[]))
    for row in rows:
        row.lift(by, **detail)
    return rows
