"""The session store (SESSION_ENGINE): Django's database sessions, whose ``clear_expired()``
records each staff sign-out it finds.

Django ends an idle session by no longer loading it, and tells no one: its row stays in
django_session, past its expiry, until deleted. Whoever deletes expired sessions goes through
``SessionStore.clear_expired()``: Django's ``clearsessions`` and our ``purge_sessions``. Each
deleted session that held a signed-in staff member becomes a ``staff_logout`` row (reason
``idle_timeout``) in the transaction that deletes it, so each is recorded once, when it is found;
``expired_at`` says when the staff member was in fact signed out (PCI DSS 10.2.1, 8.2.8).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.sessions.backends import db
from django.contrib.sessions.models import Session
from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent
from staff.auditing import UNKNOWN

# Sessions per batch: one short transaction each, so no request waits on a session row for
# longer than a batch takes. 900 keys keep the DELETE under the 999 parameters an older SQLite
# build allows in one statement.
BATCH = 900


class SessionStore(db.SessionStore):
    @classmethod
    def clear_expired(
        cls, now: datetime | None = None, counted: Callable[[int], object] | None = None
    ) -> None:
        """Delete every session past its expiry, a batch at a time, each staff member signed in
        in one of them recorded as signed out. ``counted`` is handed the number each batch
        deleted, as it commits: a run stopped halfway has still done what its batches did."""
        now = now or timezone.now()
        last = None
        while True:
            with transaction.atomic():
                # Locked until the batch commits; on PostgreSQL a session a request holds (a
                # password change being checked) is skipped, for the next run, not waited for.
                expired = Session.objects.filter(expire_date__lte=now)
                if last is not None:
                    expired = expired.filter(pk__gt=last)
                rows = expired.select_for_update(skip_locked=True).order_by("pk")
                batch = list(rows.values_list("pk", "session_data", "expire_date")[:BATCH])
                deleted = 0
                if batch:
                    _, by_model = expired.filter(pk__in=[pk for pk, *_ in batch]).delete()
                    # The batch's own rows, not those deleted with them (WrongOldPasswords).
                    deleted = by_model.get(Session._meta.label, 0)
                    with AuditEvent.batched():  # the batch's rows in one append to the chain
                        record_timed_out((data, expiry) for _, data, expiry in batch)
            if counted is not None:
                counted(deleted)
            if len(batch) < BATCH:
                return
            last = batch[-1][0]


def record_timed_out(sessions: Iterable[tuple[str, datetime]]) -> None:
    """A ``staff_logout`` row (reason ``idle_timeout``) for each expired session, given as
    (session data, expiry), in which a staff member was signed in."""
    decode = SessionStore().decode  # an undecodable session decodes to {}
    ended = [(decode(data).get(SESSION_KEY), expiry) for data, expiry in sessions]
    ended = [(user_id, expiry) for user_id, expiry in ended if user_id is not None]
    User = get_user_model()
    names = {
        str(pk): name
        for pk, name in User._default_manager.filter(
            pk__in={user_id for user_id, _ in ended}
        ).values_list("pk", User.USERNAME_FIELD)
    }
    for user_id, expiry in ended:
        AuditEvent.record(
            AuditEvent.Event.STAFF_LOGOUT,
            AuditEvent.Outcome.INFO,
            actor=names.get(str(user_id), UNKNOWN),  # a user deleted since
            channel=AuditEvent.Channel.ADMIN,
            reason="idle_timeout",
            expired_at=expiry.isoformat(),
        )
