"""The audit log: one row for every step of every call and every security decision."""

from __future__ import annotations

import datetime
import ipaddress
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.db import connection, models, transaction
from django.http import HttpRequest
from django.utils import timezone

from audit.chain import CHAINED_FIELDS, compute_mac
from audit.origins import client_address
from audit.phones import caller_digest, mask_phone
from audit.signals import rows_appended
from keys.keyring import get_keyring
from keys.sealed import db_values, record_key_use

# PostgreSQL keeps no NUL character in text or jsonb (it refuses the whole row): a value from a
# request (a path, a querystring, a user agent) may hold one, and a row must not be lost for it.
NUL, REPLACEMENT = "\x00", "\ufffd"


def without_nul(value: Any) -> Any:
    """``value`` with every NUL character in its strings, dict keys included, as U+FFFD."""
    if isinstance(value, str):
        return value.replace(NUL, REPLACEMENT)
    if isinstance(value, dict):
        return {without_nul(key): without_nul(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [without_nul(item) for item in value]
    return value


def _ip_or_none(value: str) -> str | None:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        # A link-local peer comes with its zone ("fe80::1%eth0"), an interface of this host:
        # the column drops it on save, so a MAC over it would never match the stored row.
        address = ipaddress.IPv6Address(int(address))
    return str(address)


class AppendOnlyError(Exception):
    """Audit rows are written once and never changed or deleted."""


class AuditEvent(models.Model):
    class Event(models.TextChoices):
        # The voice call
        CALL_STARTED = "call_started"
        LANGUAGE_CHOSEN = "language_chosen"
        CARD_ENTERED = "card_entered"
        PIN_ENTERED = "pin_entered"
        VERIFIED = "verified"
        NOT_FOUND = "not_found"
        INVALID_INPUT = "invalid_input"
        RETRIES_EXHAUSTED = "retries_exhausted"
        OUT_OF_ORDER = "out_of_order"
        DUPLICATE_DELIVERY = "duplicate_delivery"
        SESSION_EXPIRED = "session_expired"
        CALL_ENDED = "call_ended"
        # A status callback saying the call is still under way ("ringing", "in-progress"):
        # Twilio sends those to a callback that subscribes to call progress events.
        CALL_PROGRESS = "call_progress"
        # A status callback for a call with no session: its first step never ran here (Twilio
        # may call back before it, for "ringing"), or the session was purged.
        UNKNOWN_CALL_STATUS = "unknown_call_status"
        RESOLVER_UNAVAILABLE = "resolver_unavailable"
        STEP_FAILED = "step_failed"
        # Security decisions
        SIGNATURE_REJECTED = "signature_rejected"
        FOREIGN_ACCOUNT = "foreign_account"
        UNAUTHORIZED = "unauthorized"
        REPLAY_REFUSED = "replay_refused"
        MALFORMED_REQUEST = "malformed_request"
        # Refusals of one source in one minute past its first (audit.models.RefusalCount).
        REFUSALS_COUNTED = "refusals_counted"
        LOCKED_OUT = "locked_out"
        UNLOCKED = "unlocked"
        # Failed verifications across all accounts went over the watch's rate in one window.
        GUESSING_SUSPECTED = "guessing_suspected"
        # Staff and operations
        STAFF_LOGIN = "staff_login"
        STAFF_LOGIN_FAILED = "staff_login_failed"
        STAFF_LOCKED_OUT = "staff_locked_out"
        STAFF_LOGOUT = "staff_logout"
        RECORD_VIEWED = "record_viewed"
        RECORD_CHANGED = "record_changed"
        # Anything changed through the admin (its LogEntry), and a staff member's own password.
        STAFF_CHANGE = "staff_change"
        EXPORTED = "exported"
        SESSIONS_PURGED = "sessions_purged"
        # Accounts loaded in bulk from a file (import_accounts): how many, never what.
        ACCOUNTS_IMPORTED = "accounts_imported"
        KEY_ROTATED = "key_rotated"
        AUDIT_VERIFIED = "audit_verified"
        # The web service (gunicorn's master) started, reloaded its configuration and keys, or
        # stopped: the audit log is written only while it runs (PCI DSS 10.2.1.6).
        SERVICE_STARTED = "service_started"
        SERVICE_RELOADED = "service_reloaded"
        SERVICE_STOPPED = "service_stopped"
        # manage.py migrate applied or unapplied migrations: the schema changed (PCI DSS 10.2.1.7).
        MIGRATED = "migrated"

    class Channel(models.TextChoices):
        VOICE = "voice"
        API = "api"
        ADMIN = "admin"
        SYSTEM = "system"

    class Outcome(models.TextChoices):
        SUCCESS = "success"
        FAILURE = "failure"
        INFO = "info"

    # Set before the row is signed (auto_now_add would change it after): the MAC covers it.
    created_at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)
    event = models.CharField(max_length=32, choices=Event.choices, db_index=True)
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    channel = models.CharField(max_length=8, choices=Channel.choices, default=Channel.VOICE)
    # Who acted: "twilio" for webhooks, a staff username, or "system" for commands.
    actor = models.CharField(max_length=150, default="twilio")
    call_sid = models.CharField(max_length=64, blank=True, db_index=True)
    caller = models.CharField("caller (masked)", max_length=32, blank=True)
    # The keyed digest of the caller's number in E.164 (audit.phones.caller_digest), for an
    # exact search by number that stores no number. Null, not blank, for rows without one: a
    # nullable column is added in place, where a NOT NULL one would make SQLite copy the table
    # and lose its append-only triggers.
    caller_digest = models.CharField(  # noqa: DJ001
        "caller digest", max_length=100, null=True, blank=True, editable=False
    )
    # A number, not a foreign key: audit rows outlive the accounts they name.
    account_number = models.CharField(max_length=32, blank=True, db_index=True)
    key_id = models.CharField(max_length=32, blank=True)
    origin_ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=200, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    # The hash chain (audit.chain): "kid:hex" HMACs of this row and the one before.
    prev_mac = models.CharField("previous MAC", max_length=100, blank=True, editable=False)
    mac = models.CharField("MAC", max_length=100, blank=True, editable=False)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["event", "created_at"]),
            # The admin's search matches call_sid, account_number or actor exactly, OR-ed: each
            # needs an index, or a search reads the whole log.
            models.Index(fields=["actor"], name="audit_event_actor_idx"),
            # The search by a caller's number (its digests, matched exactly). Built without
            # blocking appends on PostgreSQL (migration 0006).
            models.Index(fields=["caller_digest"], name="audit_event_caller_idx"),
        ]
        permissions = [("export_auditevent", "Can export the audit log as CSV")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.event} {self.outcome}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # The database refuses too (triggers); this says so before a query is made.
        if not self._state.adding:
            raise AppendOnlyError("audit rows cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise AppendOnlyError("audit rows cannot be deleted")

    @classmethod
    def record(
        cls,
        event: str,
        outcome: str,
        *,
        request: HttpRequest | None = None,
        call_sid: str = "",
        caller: str = "",
        account_number: str = "",
        key_id: str = "",
        actor: str = "twilio",
        channel: str = Channel.VOICE,
        **detail: Any,
    ) -> AuditEvent:
        """Append one row to the chain. ``detail`` holds non-secret facts only: never digits,
        never tokens."""
        origin_ip, user_agent = None, ""
        if request is not None:
            origin_ip = _ip_or_none(client_address(request))
            user_agent = request.META.get("HTTP_USER_AGENT", "")[:200]
        return cls._append(
            cls(
                event=event,
                outcome=outcome,
                actor=without_nul(actor[:150]),
                channel=channel,
                call_sid=without_nul(call_sid[:64]),
                caller=without_nul(mask_phone(caller)[:32]),
                caller_digest=caller_digest(caller) if caller else None,
                account_number=without_nul(account_number[:32]),
                key_id=without_nul(key_id[:32]),
                origin_ip=origin_ip,
                user_agent=without_nul(user_agent),
                # As the database will hand it back, so the MAC signs what is stored.
                detail=json.loads(json.dumps(without_nul(detail))),
            )
        )

    @classmethod
    def _append(cls, event: AuditEvent) -> AuditEvent:
        """Append ``event`` now, or with the rows of the batched() block it is recorded in."""
        if (pending := _pending.get()) is not None:
            pending.append(event)
        else:
            AuditChainHead.append([event])
        return event

    @classmethod
    @contextmanager
    def batched(cls) -> Iterator[None]:
        """Hold the rows a block records and append them together when it ends without error.

        A call step records one to three rows: appending them at once takes the chain's head
        once and inserts them in one statement, and the head's lock (held until commit) is taken
        at the step's end instead of across it, a resolver's round trip included. Use it inside
        the step's transaction; a block that raises appends nothing, as its transaction rolls
        back anyway.
        """
        rows: list[AuditEvent] = []
        token = _pending.set(rows)
        try:
            yield
        finally:
            _pending.reset(token)
        if rows:
            AuditChainHead.append(rows)


# The rows a batched() block has recorded and not yet appended; None outside such a block.
_pending: ContextVar[list[AuditEvent] | None] = ContextVar("audit_pending", default=None)


class AuditChainHead(models.Model):
    """The newest audit row's MAC, kept in a row of its own (id 1) for appends to lock.

    An append reads it FOR UPDATE: one round trip both queues it behind other writers and gives
    it the MAC to link to, since PostgreSQL hands a waiting locker the row as the last writer
    left it. A read of the newest audit row could not do both: its snapshot predates the wait.
    """

    ID = 1
    mac = models.CharField("MAC", max_length=100, blank=True)

    def __str__(self) -> str:
        return self.mac or "(empty chain)"

    @classmethod
    def append(cls, events: Sequence[AuditEvent]) -> None:
        """Link ``events`` to the newest row, in order, sign each with the primary key, and
        insert them, moving the head to the last one."""
        ring = get_keyring()
        if not ring.recorded:
            # Once a process: the database learns the key ids that sign and the check values of
            # their bytes, so that a key id that came to stand for other bytes is found (E007).
            record_key_use(ring)
        key = ring.primary
        # No savepoint of its own inside a step's transaction: nothing here is worth rolling
        # back alone, and a savepoint would cost two more statements per append.
        with transaction.atomic(savepoint=False):
            # Locked until the enclosing transaction ends, so no other append links to this MAC.
            previous = cls._locked_mac()
            for event in events:
                event.prev_mac = previous
                event.mac = previous = compute_mac(event, key)
            _write_appended(previous, events)
            if events:
                # Inside the transaction: what is due after it (a signed checkpoint) waits for
                # its commit.
                rows_appended.send(AuditChainHead, last_id=events[-1].id, head_mac=previous)

    @classmethod
    def _locked_mac(cls) -> str:
        """The head's MAC, its row locked until the transaction ends (on SQLite the write lock
        that BEGIN IMMEDIATE took does that)."""
        select = "SELECT mac FROM audit_auditchainhead WHERE id = %s"
        if connection.vendor == "postgresql":
            select += " FOR UPDATE"
        with connection.cursor() as cursor:
            cursor.execute(select, [cls.ID])
            row = cursor.fetchone()
        if row is not None:
            return str(row[0])
        # Migration 0002 creates the row; a flushed database (a test's) has none. It starts
        # again at the newest row, and a racing writer's copy wins.
        newest = AuditEvent.objects.order_by("-id").values_list("mac", flat=True).first()
        head = AuditChainHead(id=cls.ID, mac=newest or "")
        AuditChainHead.objects.bulk_create([head], ignore_conflicts=True)
        return cls._locked_mac()


# An append's writes, by hand: every call step makes one, and through the ORM (save() of the
# head, bulk_create() of the rows) it was the largest part of a step's time (bench/README.md).
# The columns are AuditEvent's, less its id: what the MAC covers, then the chain's links.
APPENDED_COLUMNS = (*CHAINED_FIELDS, "prev_mac", "mac")
# Rows per INSERT: 64 rows of 15 values stay within SQLite's oldest limit of 999 parameters.
ROWS_PER_INSERT = 64


def _write_appended(head_mac: str, events: Sequence[AuditEvent]) -> None:
    """Move the head to ``head_mac`` and insert ``events`` in order, so that ids follow the
    chain; each row gets its id, and is no longer one to add (its save() refuses)."""
    columns = ", ".join(APPENDED_COLUMNS)
    row = "(" + ", ".join(["%s"] * len(APPENDED_COLUMNS)) + ")"
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE audit_auditchainhead SET mac = %s WHERE id = %s", [head_mac, AuditChainHead.ID]
        )
        for start in range(0, len(events), ROWS_PER_INSERT):
            chunk = events[start : start + ROWS_PER_INSERT]
            # A constant statement, its values all parameters: S608 does not apply.
            cursor.execute(
                f"INSERT INTO audit_auditevent ({columns}) "  # noqa: S608
                f"VALUES {', '.join([row] * len(chunk))} RETURNING id, mac",
                [value for event in chunk for value in db_values(event, APPENDED_COLUMNS)],
            )
            # Matched by MAC, which is unique to its row: neither database promises RETURNING's
            # rows in the order of VALUES, though both assign the ids in that order.
            ids = dict((mac, row_id) for row_id, mac in cursor.fetchall())
            for event in chunk:
                event.id = ids[event.mac]
                event._state.adding = False


class RefusalCount(models.Model):
    """Refusals of unsigned, forged or malformed requests from one source in one minute, past
    its first, one counter per kind: plain counters, not chained, so that a flood costs the chain
    at most two rows per source and minute (the first refusal's, then one ``refusals_counted``
    row for all the counters of that source and minute).

    Nothing is lost: the counter is recorded as a chained row, and deleted, when the source's
    next refusal comes in a later minute, or when ``record_refusal_counts()`` runs.
    """

    # The client's address (audit.origins.client_address), "" when it is no IP address.
    source = models.CharField(max_length=45, blank=True)
    # The minute's start, in UTC.
    minute = models.DateTimeField()
    event = models.CharField(max_length=32, choices=AuditEvent.Event.choices)
    # Refusals after the minute's first, which has its own chained row.
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source", "minute", "event"], name="audit_refusalcount_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.minute:%Y-%m-%d %H:%M} {self.source or '?'} {self.event} +{self.count}"

    @classmethod
    def first_this_minute(cls, source: str, event: str) -> bool:
        """Count one refusal of ``event`` from ``source`` now; True when it is the source's
        first of the minute, of any kind, which the caller records as its own chained row.

        A source's counters from earlier minutes are recorded first: its refusals stay in order.
        """
        minute = timezone.now().replace(second=0, microsecond=0)
        this_minute = cls.objects.filter(source=source, minute=minute)
        counter = this_minute.filter(event=event)
        with transaction.atomic():
            # The flood's case: one UPDATE, no chained row and no wait on the chain's head.
            if counter.update(count=models.F("count") + 1):
                return False
            first = not this_minute.exists()
            if first:
                record_refusal_counts(before=minute, source=source)
            # get_or_create retries the read when a racing request created the row first.
            _, created = cls.objects.get_or_create(source=source, minute=minute, event=event)
            if first and created:
                return True
            # Another kind came first this minute, or a racing request of this one: counted.
            counter.update(count=models.F("count") + 1)
            return False


def record_refusal_counts(
    before: datetime.datetime | None = None, source: str | None = None
) -> int:
    """Record each refusal counter of a minute before ``before`` (default: this minute) as one
    ``refusals_counted`` row, and delete it; only ``source``'s when given. Returns the rows."""
    if before is None:
        before = timezone.now().replace(second=0, microsecond=0)
    counters = RefusalCount.objects.filter(minute__lt=before)
    if source is not None:
        counters = counters.filter(source=source)
    recorded = 0
    with transaction.atomic():
        # Locked, and skipped when locked already: two requests never record one counter twice.
        taken = list(counters.select_for_update(skip_locked=True).order_by("minute", "pk"))
        # One row per source and minute, whatever kinds of refusal it counted.
        grouped: dict[tuple[str, datetime.datetime], dict[str, int]] = {}
        for counter in taken:
            if counter.count:
                refused = grouped.setdefault((counter.source, counter.minute), {})
                refused[counter.event] = counter.count
        with AuditEvent.batched():
            for (counted_source, minute), refused in grouped.items():
                _record_counted(counted_source, minute, refused)
                recorded += 1
        RefusalCount.objects.filter(pk__in=[counter.pk for counter in taken]).delete()
    return recorded


def _record_counted(source: str, minute: datetime.datetime, refused: dict[str, int]) -> None:
    # The row's origin IP is the source's, as on the minute's first row.
    request = HttpRequest()
    request.META["REMOTE_ADDR"] = source
    AuditEvent.record(
        AuditEvent.Event.REFUSALS_COUNTED,
        AuditEvent.Outcome.FAILURE,
        request=request,
        actor="system",
        channel=AuditEvent.Channel.SYSTEM,
        count=sum(refused.values()),
        minute=minute.isoformat(),
        refused=refused,
    )
