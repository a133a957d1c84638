"""purge_sessions: end stale calls, delete sessions past retention, idle lockout counters and
expired admin sessions.

Each step works through its rows in batches of BATCH, in primary-key order, one short transaction
per batch, so no call's row stays locked longer than a batch takes: a status callback for one of
those calls waits milliseconds, not the length of the whole purge. On PostgreSQL a batch skips the
rows a call step holds (SKIP LOCKED) rather than wait for them: that step is live, and whatever it
leaves is the next hourly run's. Only keys are read, a batch at a time, so memory does not grow
with the row count. Expired admin sessions go through the session store's clear_expired()
(staff/sessions.py), which records each idle sign-out.
"""

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts import lockout
from accounts.models import GuessingWindow, Lockout
from audit.models import AuditEvent, record_refusal_counts
from calls.models import CallSession
from keys.commands import DatabaseCommand
from staff.sessions import SessionStore

# Rows per batch; a batch's UPDATE or DELETE lists their keys, which keeps it under the 999
# parameters an older SQLite build allows in one statement.
BATCH = 900

_Batch = list[tuple[Any, ...]]


def purge_sessions(now: datetime | None = None) -> dict[str, int]:
    """End calls past their lifetime, delete sessions past retention, idle lockout counters and
    expired admin sessions.

    A call whose status callback never came is ended here: its sealed values and last answer
    are wiped. Counters untouched for as long as their failures count (a day for a caller's, the
    ceiling's 30 days for a card's or an owner's) hold no failure that still counts, and the
    guessing watch's past windows are done with.
    An admin session past its expiry was ended by the idle timeout; Django deletes none. And
    the refusals counted in minutes gone by are recorded.
    """
    now = now or timezone.now()
    lifetime = timedelta(seconds=settings.SECUREGATHER_SESSION_LIFETIME)
    retention = timedelta(seconds=settings.SECUREGATHER_SESSION_RETENTION)
    stale = CallSession.objects.filter(created_at__lt=now - lifetime, ended_at=None)
    expired = CallSession.objects.filter(created_at__lt=now - retention)
    idle = Lockout.objects.filter(lockout.idle(now))
    # The guessing watch reads this window and the one before (lockout.guessing_suspected).
    watched = timedelta(seconds=2 * settings.SECUREGATHER_GUESSING_WINDOW)
    past_windows = GuessingWindow.objects.filter(start__lt=now - watched)
    counts = {"ended": 0, "deleted": 0, "counters": 0, "staff_sessions": 0}
    # Each batch commits on its own: a run stopped halfway has still done, and must still
    # record, what its committed batches did.
    finished = False
    try:
        _in_batches(stale, _expire, counts, "ended", "state", "call_sid", "caller")
        _in_batches(expired, _delete_rows, counts, "deleted")
        _in_batches(idle, _delete_rows, counts, "counters")
        # Plain rate counters with nothing to account for: deleted, not counted in the row.
        _in_batches(past_windows, _delete_rows, {"windows": 0}, "windows")
        clear_staff_sessions(now, counts)
        # Refusals counted in minutes gone by become their refusals_counted rows (each is
        # recorded then, so the purge's own row need not count them).
        record_refusal_counts(before=now.replace(second=0, microsecond=0))
        finished = True
    finally:
        detail: dict[str, Any] = {**counts} if finished else {**counts, "stopped": True}
        with transaction.atomic():
            AuditEvent.record(
                AuditEvent.Event.SESSIONS_PURGED,
                AuditEvent.Outcome.INFO if finished else AuditEvent.Outcome.FAILURE,
                actor="system",
                channel=AuditEvent.Channel.SYSTEM,
                **detail,
            )
    return counts


def clear_staff_sessions(now: datetime, counts: dict[str, int]) -> None:
    """Delete expired admin sessions through the session store, which records each staff
    sign-out it finds (as Django's clearsessions does), adding to ``counts["staff_sessions"]``
    as each batch commits."""

    def counted(deleted: int) -> None:
        counts["staff_sessions"] += deleted

    SessionStore.clear_expired(now, counted)


def _in_batches(
    rows: QuerySet[Any],
    act: Callable[[QuerySet[Any], _Batch], int],
    counts: dict[str, int],
    count: str,
    *fields: str,
) -> None:
    """Run ``act`` on each batch of ``rows`` as (pk, *fields) tuples, adding what it returns to
    ``counts[count]`` as each batch commits.

    A batch shorter than BATCH means no row past it matched (or all were locked) when it was read.
    """
    last = None
    while True:
        with transaction.atomic():
            batch = _lock_batch(rows, last, fields)
            done = act(rows, batch) if batch else 0
        counts[count] += done
        if len(batch) < BATCH:
            return
        last = batch[-1][0]


def _lock_batch(rows: QuerySet[Any], after: Any, fields: tuple[str, ...]) -> _Batch:
    """The next BATCH rows past the key ``after``, row-locked, skipping those locked already."""
    # SQLite takes no row locks: Django leaves FOR UPDATE out there, and BEGIN IMMEDIATE's write
    # lock holds every row.
    locked = rows.select_for_update(skip_locked=True).order_by("pk")
    if after is not None:
        locked = locked.filter(pk__gt=after)
    return list(locked.values_list("pk", *fields)[:BATCH])


def _expire(stale: QuerySet[CallSession], batch: _Batch) -> int:
    """End a batch of stale calls, each with its own audit row: a call's trail says how it
    ended even when no status callback came."""
    ended = CallSession.expire_all(stale, [(pk, state) for pk, state, *_ in batch])
    with AuditEvent.batched():  # the batch's rows in one append to the chain
        for _, _, call_sid, caller in batch:
            AuditEvent.record(
                AuditEvent.Event.SESSION_EXPIRED,
                AuditEvent.Outcome.INFO,
                actor="system",
                channel=AuditEvent.Channel.SYSTEM,
                call_sid=call_sid,
                caller=caller,
                ended_by="purge_sessions",
            )
    return ended


def _delete_rows(rows: QuerySet[Any], batch: _Batch) -> int:
    # The batch's own rows, not those deleted with them by cascade.
    _, deleted = rows.filter(pk__in=[pk for pk, *_ in batch]).delete()
    return deleted.get(rows.model._meta.label, 0)


class Command(DatabaseCommand):
    help = (
        "End calls past their lifetime; delete sessions past retention, lockout counters idle "
        "for as long as their failures count, and expired admin sessions (run it hourly, from "
        "one host)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        counts = purge_sessions()
        self.stdout.write(
            f"Ended {counts['ended']} stale call(s), deleted {counts['deleted']} session(s) past "
            f"retention, {counts['counters']} idle lockout counter(s) and "
            f"{counts['staff_sessions']} expired admin session(s)."
        )
