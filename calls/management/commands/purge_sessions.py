from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts import lockout
from accounts.models import Lockout
from calls.models import CallSession
from securegather.commands import DatabaseCommand
from securegather.models import AuditEvent


def purge_sessions(now: datetime | None = None) -> dict[str, int]:
    """End calls past their lifetime, delete sessions past retention and idle lockout counters.

    A call whose status callback never came is ended here: its sealed values and last answer
    are wiped. Counters untouched for a whole lockout window hold no failure that still counts.
    """
    now = now or timezone.now()
    lifetime = timedelta(seconds=settings.SECUREGATHER_SESSION_LIFETIME)
    retention = timedelta(seconds=settings.SECUREGATHER_SESSION_RETENTION)
    with transaction.atomic():
        stale = CallSession.objects.select_for_update().filter(
            created_at__lt=now - lifetime, ended_at=None
        )
        ended = 0
        for session in stale:
            if not session.is_finished:
                session.finish(CallSession.Outcome.EXPIRED)
            session.end()
            session.save()
            ended += 1
        deleted, _ = CallSession.objects.filter(created_at__lt=now - retention).delete()
        idle = Lockout.objects.filter(updated_at__lt=now - lockout.window()).exclude(
            locked_until__gt=now
        )
        counters, _ = idle.delete()
        counts = {"ended": ended, "deleted": deleted, "counters": counters}
        AuditEvent.record(
            AuditEvent.Event.SESSIONS_PURGED,
            AuditEvent.Outcome.INFO,
            actor="system",
            channel=AuditEvent.Channel.SYSTEM,
            ended=ended,
            deleted=deleted,
            counters=counters,
        )
    return counts


class Command(DatabaseCommand):
    help = "End calls past their lifetime and delete sessions past retention (run it hourly)."

    def handle(self, *args: Any, **options: Any) -> None:
        counts = purge_sessions()
        self.stdout.write(
            f"Ended {counts['ended']} stale call(s), deleted {counts['deleted']} session(s) past "
            f"retention and {counts['counters']} idle lockout counter(s)."
        )
