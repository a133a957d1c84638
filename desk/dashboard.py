"""What the admin's first page shows ops at a glance, read from the audit log (sessions are purged
after a day), the lockouts, the keyring and the system checks.

Each section is there only for a user whose role can already view its records elsewhere in the
admin: the calls and the audit log's verification for ``audit.view_auditevent``, the locks for
``accounts.view_lockout``, the keyring for ``keys.view_keyrecord``, the system checks for
superusers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.checks import WARNING, CheckMessage, run_checks
from django.db.models import Count
from django.db.models.functions import TruncHour
from django.urls import reverse
from django.utils.http import urlencode

from accounts.models import Lockout
from audit.models import AuditEvent
from desk.charts import Chart, bars, columns
from keys.keyring import get_keyring
from keys.models import KeyRecord
from staff.admin import FailedVerifications

Event = AuditEvent.Event
# The events that end a call's verification, as the dashboard names them, success first.
OUTCOMES = {
    Event.VERIFIED: "verified",
    Event.NOT_FOUND: "not found",
    Event.LOCKED_OUT: "locked out",
    Event.RETRIES_EXHAUSTED: "retries exhausted",
    Event.RESOLVER_UNAVAILABLE: "resolver unavailable",
    Event.SESSION_EXPIRED: "expired",
}
# The outcomes that count as a failed verification, per hour, as the audit log's filter of them
# lists them: a wrong card or PIN, or a caller or account refused for too many of them.
FAILURES = FailedVerifications.EVENTS
# Locks listed by name; the lockouts page has the rest.
LOCKS_SHOWN = 20
HOURS = 24


@dataclass
class Period:
    """Calls of one period by outcome, from the audit log."""

    title: str
    since: datetime
    started: int
    counts: dict[str, int]
    chart: Chart

    @property
    def checked(self) -> int:
        """PINs checked: verified or not found."""
        return self.counts.get(Event.VERIFIED, 0) + self.counts.get(Event.NOT_FOUND, 0)

    @property
    def success_rate(self) -> str:
        """Verified, of the PINs checked, as a percentage; a dash when none was."""
        if not self.checked:
            return "—"
        return f"{100 * self.counts.get(Event.VERIFIED, 0) / self.checked:.0f} %"


@dataclass
class Lock:
    scope: str
    who: str  # a caller's number masked, or an account's number
    locked_until: datetime
    url: str


@dataclass
class Keys:
    primary: str
    age_days: int | None
    max_age_days: int
    seals: int | None
    max_seals: int
    retired: list[str]
    chart: Chart
    # The resolver in use (SECUREGATHER_RESOLVER): with the HTTP resolver, callers' entries are
    # sealed to the backend's keys, which the ring's figures do not count.
    resolver: str = ""


@dataclass
class Dashboard:
    now: datetime
    periods: list[Period] = field(default_factory=list)
    failures_per_hour: Chart | None = None
    guessing: int | None = None
    last_verification: AuditEvent | None = None
    shows_audit: bool = False
    locks: list[Lock] | None = None
    locks_total: int = 0
    keys: Keys | None = None
    checks: list[CheckMessage] | None = None


def audit_url(**query: Any) -> str:
    """The audit log's page with ``query`` as its filters."""
    return f"{reverse('admin:audit_auditevent_changelist')}?{urlencode(query)}"


def period(title: str, since: datetime) -> Period:
    rows = AuditEvent.objects.filter(created_at__gte=since)
    found = dict(
        rows.filter(event__in=[*OUTCOMES, Event.CALL_STARTED])
        .values_list("event")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts: dict[str, int] = {event: found.get(event, 0) for event in OUTCOMES}
    chart = bars(
        [
            (
                label,
                counts[event],
                audit_url(event__exact=event, created_at__gte=since.isoformat()),
            )
            for event, label in OUTCOMES.items()
        ]
    )
    return Period(title, since, found.get(Event.CALL_STARTED, 0), counts, chart)


def failures_per_hour(now: datetime) -> Chart:
    """Failed verifications in each of the last 24 hours, oldest first, each a link to the
    hour's failed verifications in the audit log: the rows its bar counts."""
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = end - timedelta(hours=HOURS)
    found = dict(
        AuditEvent.objects.filter(event__in=FAILURES, created_at__gte=start)
        .annotate(hour=TruncHour("created_at"))
        .values_list("hour")
        .annotate(n=Count("id"))
        .order_by()
    )
    hours = [start + timedelta(hours=n) for n in range(HOURS)]
    return columns(
        [
            (
                f"{hour:%H}:00",
                found.get(hour, 0),
                audit_url(
                    created_at__gte=hour.isoformat(),
                    created_at__lt=(hour + timedelta(hours=1)).isoformat(),
                    **{FailedVerifications.parameter_name: FailedVerifications.FAILED},
                ),
            )
            for hour in hours
        ]
    )


def locks_now(now: datetime) -> tuple[list[Lock], int]:
    locked = Lockout.objects.filter(locked_until__gt=now).order_by("locked_until")
    shown = [
        Lock(
            scope=lock.get_scope_display(),
            who=lock.masked_key,
            locked_until=lock.locked_until,
            url=reverse("admin:accounts_lockout_change", args=[lock.pk]),
        )
        for lock in locked[:LOCKS_SHOWN]
        if lock.locked_until is not None
    ]
    return shown, locked.count()


def keyring_state(now: datetime) -> Keys:
    """The primary key's age and seals, against the limits past which it should be rotated."""
    ring = get_keyring()
    record = KeyRecord.objects.filter(kid=ring.primary.kid).first()
    age = (now - record.first_seen).days if record else None
    seals = record.sealed_count + ring.unrecorded_seals if record else None
    max_age, max_seals = settings.SECUREGATHER_KEY_MAX_AGE_DAYS, settings.SECUREGATHER_KEY_MAX_SEALS
    chart = bars(
        [
            (f"age, of {max_age} days", age or 0, ""),
            (f"seals, of {max_seals:,}", seals or 0, ""),
        ],
        scale=[max_age, max_seals],
    )
    resolver = settings.SECUREGATHER_RESOLVER.rpartition(".")[2]
    return Keys(
        ring.primary.kid, age, max_age, seals, max_seals, sorted(ring.retired), chart, resolver
    )


# How long a worker shows the system checks it ran, in seconds: they scan every sealed column by
# key id (keys/rotation.py), which grows with the accounts, and superusers reload the first page.
CHECKS_CACHED_FOR = 60
CHECKS_CACHE_KEY = "desk.dashboard.failing_checks"


def failing_checks() -> list[CheckMessage]:
    """The system checks that warn or fail now, the database's included, as `manage.py check
    --database default` runs them."""
    messages = run_checks(databases=list(settings.DATABASES))
    return [message for message in messages if message.level >= WARNING]


def recent_failing_checks() -> list[CheckMessage]:
    """:func:`failing_checks` as run at most CHECKS_CACHED_FOR seconds ago by this worker (the
    default cache, local memory), without the objects they name: what the page shows."""
    found = cache.get(CHECKS_CACHE_KEY)
    if found is None:
        found = [
            CheckMessage(m.level, str(m.msg), hint=str(m.hint) if m.hint else None, id=m.id)
            for m in failing_checks()
        ]
        cache.set(CHECKS_CACHE_KEY, found, CHECKS_CACHED_FOR)
    return found


def dashboard(user: Any, now: datetime) -> Dashboard:
    """What ``user`` may see of the service's state at ``now``."""
    board = Dashboard(now=now)
    if user.has_perm("audit.view_auditevent"):
        board.shows_audit = True
        # From the minute: the links to the audit log's rows read better for it.
        minute = now.replace(second=0, microsecond=0)
        board.periods = [
            period("Last 24 hours", minute - timedelta(hours=24)),
            period("Last 7 days", minute - timedelta(days=7)),
        ]
        board.failures_per_hour = failures_per_hour(now)
        board.guessing = AuditEvent.objects.filter(
            event=Event.GUESSING_SUSPECTED, created_at__gte=now - timedelta(hours=24)
        ).count()
        board.last_verification = (
            AuditEvent.objects.filter(event=Event.AUDIT_VERIFIED).order_by("-id").first()
        )
    if user.has_perm("accounts.view_lockout"):
        board.locks, board.locks_total = locks_now(now)
    if user.has_perm("keys.view_keyrecord"):
        board.keys = keyring_state(now)
    if user.is_superuser:
        board.checks = recent_failing_checks()
    return board
