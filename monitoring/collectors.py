"""Figures read from the database at scrape time: every worker on every host gives the same.

The audit log is append-only, so the number of its rows of a kind only grows: a Prometheus
counter. Counting the whole log at each scrape would read more rows every day, so each process
keeps the counts of rows older than SETTLE and adds, at each scrape, the rows that have since
grown older than it; rows younger than SETTLE are counted afresh every time. A row's time is set
before its transaction commits, and a step's transaction lasts far less than SETTLE (gunicorn
restarts a worker stuck 10 s), and hosts' clocks differ by far less, so no row becomes visible
after the window it belongs to was counted. Both reads use the (event, created_at) index.

No label holds a digit a caller typed, a caller's number or an account number: labels are event
kinds, lockout scopes and key roles, each from a fixed list.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, QuerySet, Sum
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from accounts.models import Lockout
from audit.models import AuditEvent, RefusalCount
from keys.keyring import KeyringError, get_keyring
from keys.models import KeyRecord

SETTLE = timedelta(minutes=5)
Event = AuditEvent.Event

# How a call ended, as its audit rows say (voice channel only: the API records some too).
CALL_OUTCOMES = {
    Event.VERIFIED: "verified",
    Event.NOT_FOUND: "not_found",
    Event.RETRIES_EXHAUSTED: "retries_exhausted",
    Event.RESOLVER_UNAVAILABLE: "resolver_unavailable",
    Event.STEP_FAILED: "step_failed",
    Event.SESSION_EXPIRED: "session_expired",
}
# Requests refused before any call logic ran. The first of a source's minute has its own row;
# the rest are counted in RefusalCount, then recorded as one refusals_counted row.
REFUSALS = {
    Event.SIGNATURE_REJECTED: "signature_rejected",
    Event.FOREIGN_ACCOUNT: "foreign_account",
    Event.UNAUTHORIZED: "unauthorized",
    Event.REPLAY_REFUSED: "replay_refused",
    Event.MALFORMED_REQUEST: "malformed_request",
}
COUNTED = [Event.CALL_STARTED, *CALL_OUTCOMES, *REFUSALS, Event.LOCKED_OUT]


class AuditTally:
    """Audit rows per (event, channel), and refusals per kind from refusals_counted rows."""

    def __init__(self) -> None:
        self.settled: Counter[tuple[str, str]] = Counter()
        self.until: datetime | None = None
        # Scrapes can come on two threads of one process at once.
        self.lock = threading.Lock()

    def counts(self, now: datetime) -> Counter[tuple[str, str]]:
        horizon = now - SETTLE
        with self.lock:
            if self.until is None or horizon > self.until:
                older = AuditEvent.objects.filter(created_at__lt=horizon)
                if self.until is not None:
                    older = older.filter(created_at__gte=self.until)
                self.settled.update(_tally(older))
                self.until = horizon
            recent = _tally(AuditEvent.objects.filter(created_at__gte=self.until))
            return self.settled + recent


def _tally(rows: QuerySet[AuditEvent]) -> Counter[tuple[str, str]]:
    """Rows of the kinds counted, per (event, channel); the refusals the refusals_counted rows
    count, per ("refusals_counted", kind)."""
    tally: Counter[tuple[str, str]] = Counter()
    for row in rows.filter(event__in=COUNTED).values("event", "channel").annotate(n=Count("id")):
        tally[row["event"], row["channel"]] += row["n"]
    # One row per source and minute of refusals at most: few, read whole.
    for detail in rows.filter(event=Event.REFUSALS_COUNTED).values_list("detail", flat=True):
        for kind, n in (detail.get("refused") or {}).items():
            if kind in REFUSALS and isinstance(n, int):
                tally[Event.REFUSALS_COUNTED, kind] += n
    return tally


class DatabaseCollector(Collector):
    def __init__(self, tally: AuditTally) -> None:
        self.tally = tally

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        counts = self.tally.counts(now)
        voice = AuditEvent.Channel.VOICE

        started = CounterMetricFamily(
            "securegather_calls_started", "Calls whose first step opened a session."
        )
        started.add_metric([], counts[Event.CALL_STARTED, voice])
        yield started

        outcomes = CounterMetricFamily(
            "securegather_call_outcomes",
            "How calls' verifications ended, by outcome (the voice channel's audit rows).",
            labels=["outcome"],
        )
        for event, outcome in CALL_OUTCOMES.items():
            outcomes.add_metric([outcome], counts[event, voice])
        yield outcomes

        refusals = CounterMetricFamily(
            "securegather_refusals",
            "Requests refused as unsigned, forged, foreign, unauthorized, replayed or malformed.",
            labels=["kind"],
        )
        pending = _pending_refusals()
        for event, kind in REFUSALS.items():
            rows = sum(n for (e, _), n in counts.items() if e == event)
            counted = counts[Event.REFUSALS_COUNTED, event] + pending.get(event, 0)
            refusals.add_metric([kind], rows + counted)
        yield refusals

        lockouts = CounterMetricFamily(
            "securegather_lockouts",
            "Lockout counters (callers, cards, owners) locked after failed guesses.",
        )
        lockouts.add_metric([], sum(n for (e, _), n in counts.items() if e == Event.LOCKED_OUT))
        yield lockouts

        locked = GaugeMetricFamily(
            "securegather_locked",
            "Lockout counters locked now, by scope (caller, card, owner).",
            labels=["scope"],
        )
        now_locked = Counter(
            Lockout.objects.filter(locked_until__gt=now).values_list("scope", flat=True)
        )
        for scope in Lockout.Scope:
            locked.add_metric([scope.value], now_locked[scope.value])
        yield locked

        yield from _seals()


def _pending_refusals() -> dict[str, int]:
    """Refusals counted and not yet recorded as a refusals_counted row."""
    sums = RefusalCount.objects.values("event").annotate(n=Sum("count"))
    return {row["event"]: row["n"] or 0 for row in sums}


def _seals() -> Iterable[Metric]:
    """Values sealed under the primary key, against SECUREGATHER_KEY_MAX_SEALS. Labelled by
    the key's role, never its id."""
    try:
        ring = get_keyring()
    except KeyringError:
        return
    seals = GaugeMetricFamily(
        "securegather_key_seals",
        "Values sealed under each key of the ring, by role (processes add theirs every 1,024).",
        labels=["role"],
    )
    records = dict(
        KeyRecord.objects.filter(kid__in=list(ring.keys)).values_list("kid", "sealed_count")
    )
    primary = records.get(ring.primary.kid, 0) + ring.unrecorded_seals
    others = sum(n for kid, n in records.items() if kid != ring.primary.kid)
    seals.add_metric(["primary"], primary)
    seals.add_metric(["active"], others)
    yield seals
    limit = GaugeMetricFamily(
        "securegather_key_seal_limit",
        "SECUREGATHER_KEY_MAX_SEALS: rotate before the primary key's seals reach it.",
    )
    limit.add_metric([], settings.SECUREGATHER_KEY_MAX_SEALS)
    yield limit
