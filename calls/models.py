"""CallSession: one row per call, keyed by CallSid, holding the call's state and sealed digits.

No URL carries a digit or a ciphertext: each Gather posts back to a fixed action and the step
reads its state here. Sealed digits live only until the result is known.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.db.transaction import TransactionManagementError
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from accounts import lockout
from accounts.resolvers import Resolution, resolve, resolve_sealed, seals_for_backend
from audit import phones
from calls import languages
from keys import hpke
from keys.sealed import Sealed, SealedField, SealedFieldsMixin, db_values

CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}")
ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")
# Twilio's I-Twilio-Idempotency-Token is opaque; anything else in the header is ignored.
IDEMPOTENCY_TOKEN = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")
# Twilio's StirVerstat: "TN-Validation-Passed-A", "TN-Validation-Failed-B", "No-TN-Validation"…
VERSTAT = re.compile(r"[A-Za-z-]{1,40}")


def is_call_sid(value: str) -> bool:
    return CALL_SID.fullmatch(value) is not None


def clean_caller(value: str) -> str:
    """Twilio's From ("+15551234567", "client:alice", "anonymous"); anything unprintable → ""."""
    return value[:32] if value.isascii() and value.isprintable() else ""


def clean_account_sid(value: str) -> str:
    return value if ACCOUNT_SID.fullmatch(value) else ""


def clean_attestation(value: str) -> str:
    """Twilio's StirVerstat as it came, if it has the form of one; anything else → ""."""
    return value if VERSTAT.fullmatch(value) else ""


def clean_idempotency_token(value: str) -> str:
    return value if IDEMPOTENCY_TOKEN.fullmatch(value) else ""


# What a step may change on its session (save_step): every column but the id, the call's own
# (call_sid, account_sid, caller, caller_digest, attestation) and created_at.
STEP_COLUMNS = (
    "language",
    "state",
    "outcome",
    "tries",
    "card",
    "pin",
    "account_number",
    "idempotency_token",
    "last_answer",
    "updated_at",
    "ended_at",
)


class CallSession(SealedFieldsMixin, models.Model):
    class State(models.TextChoices):
        AWAITING_CARD = "awaiting_card"
        AWAITING_PIN = "awaiting_pin"
        FINISHED = "finished"

    class Outcome(models.TextChoices):
        NONE = "", "—"
        VERIFIED = "verified"
        NOT_FOUND = "not_found"
        RETRIES_EXHAUSTED = "retries_exhausted"
        RESOLVER_UNAVAILABLE = "resolver_unavailable"
        LOCKED_OUT = "locked_out"
        EXPIRED = "expired"
        HUNG_UP = "hung_up"

    call_sid = models.CharField("CallSid", max_length=34, unique=True)
    account_sid = models.CharField("AccountSid", max_length=34, blank=True)
    caller = models.CharField(max_length=32, blank=True)
    # The keyed digest of the caller's number (audit.phones.caller_digest): the admin finds a
    # call by number through it, as it finds the call's audit rows. Its database default lets the
    # release before it insert sessions without it while a rolling deploy runs both: migrate
    # runs before the new code takes traffic (docs/deployment.md).
    caller_digest = models.CharField(
        max_length=100, blank=True, editable=False, db_index=True, default="", db_default=""
    )
    # The caller's SHAKEN/STIR verification as Twilio's first webhook of the call gave it
    # (StirVerstat); "TN-Validation-Passed-A" from a registered number makes the owner's call.
    # A database default too, for the release before it (see caller_digest).
    attestation = models.CharField(max_length=40, blank=True, default="", db_default="")
    # The call's prompt language when the caller chose one; blank means the configured default.
    language = models.CharField(max_length=8, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.AWAITING_CARD)
    outcome = models.CharField(max_length=24, choices=Outcome.choices, blank=True)
    # Invalid entries at the current prompt; reset when the prompt changes.
    tries = models.PositiveSmallIntegerField(default=0)
    # Sealed to the backend with the hybrid suite, a value takes 1,574 characters at most.
    card = SealedField(context_field="call_sid", max_length=hpke.TOKEN_MAX_LENGTH)
    pin = SealedField(context_field="call_sid", max_length=hpke.TOKEN_MAX_LENGTH)
    account_number = models.CharField(max_length=32, blank=True)
    # The last step's Twilio idempotency token and what it answered, so that a redelivery of
    # that webhook hears the same answer without the step running twice. Cleared at call end.
    idempotency_token = models.CharField(max_length=128, blank=True)
    last_answer = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.call_sid

    @classmethod
    def locked(cls, call_sid: str) -> CallSession | None:
        """The call's session under a row lock held until the transaction ends, if it exists.

        By hand, as save_step(): every step but the first runs it (bench/README.md says why).
        On SQLite the write lock that BEGIN IMMEDIATE took holds every row.
        """
        if transaction.get_autocommit():
            # As select_for_update() would: outside a transaction the lock would end at once.
            raise TransactionManagementError("CallSession.locked() needs a transaction")
        select = "SELECT * FROM calls_callsession WHERE call_sid = %s"
        if connection.vendor == "postgresql":
            select += " FOR UPDATE"
        return next(iter(cls.objects.raw(select, [call_sid])), None)

    @classmethod
    def start(
        cls, call_sid: str, account_sid: str, caller: str, attestation: str = ""
    ) -> tuple[CallSession, bool]:
        """The call's new session, and True; or, when another delivery of the call's webhook
        inserted one first, that one under a row lock, and False.

        Use inside transaction.atomic(): the row inserted here stays locked until it ends. The
        INSERT is written by hand, as save_step(): ON CONFLICT DO NOTHING needs no savepoint for
        a racing delivery (on PostgreSQL a failed INSERT would abort the whole step), and its
        RETURNING says whether this row was the one kept, which bulk_create() cannot.
        """
        session = cls(
            call_sid=call_sid,
            account_sid=account_sid,
            caller=caller,
            caller_digest=(phones.caller_digest(caller) or "") if caller else "",
            attestation=attestation,
        )
        session.created_at = session.updated_at = timezone.now()
        names = (
            "call_sid",
            "account_sid",
            "caller",
            "caller_digest",
            "attestation",
            "created_at",
            *STEP_COLUMNS,
        )
        columns, values = ", ".join(names), db_values(session, names)
        with connection.cursor() as cursor:
            # Constant column names, every value a parameter: S608 does not apply.
            cursor.execute(
                f"INSERT INTO calls_callsession ({columns}) "  # noqa: S608
                f"VALUES ({', '.join(['%s'] * len(names))}) "
                "ON CONFLICT (call_sid) DO NOTHING RETURNING id",
                values,
            )
            inserted = cursor.fetchone()
        if inserted is None:
            # PostgreSQL held this INSERT until the racing delivery's step committed: the row
            # read here is the session as that step left it.
            racing = cls.locked(call_sid)
            assert racing is not None  # a conflict means the row is there
            return racing, False
        session.id, session._state.adding = inserted[0], False
        return session, True

    def save_step(self) -> None:
        """Write back what a step may change, in one UPDATE written by hand: every step runs it,
        and through save() the ORM's building of the statement cost more than the database's
        running it (bench/README.md). The columns a step never changes are left out."""
        self.updated_at = timezone.now()
        values = db_values(self, STEP_COLUMNS)
        assignments = ", ".join(f"{name} = %s" for name in STEP_COLUMNS)
        with connection.cursor() as cursor:
            # Constant column names, every value a parameter: S608 does not apply.
            cursor.execute(
                f"UPDATE calls_callsession SET {assignments} WHERE id = %s",  # noqa: S608
                [*values, self.pk],
            )

    @property
    def is_fully_attested(self) -> bool:
        """Whether the caller's carrier vouched for the number in full (SHAKEN/STIR "A")."""
        return lockout.is_fully_attested(self.attestation)

    @property
    def is_finished(self) -> bool:
        return self.state == self.State.FINISHED

    @property
    def is_ended(self) -> bool:
        """Whether the call is over: its status callback came, or purge_sessions ended it."""
        return self.ended_at is not None

    @property
    def expires_at(self) -> datetime:
        return self.created_at + timedelta(seconds=settings.SECUREGATHER_SESSION_LIFETIME)

    def is_expired(self, now: datetime) -> bool:
        return now >= self.expires_at

    def expire(self, now: datetime) -> bool:
        """End a call still under way once it is past its lifetime; True when this ended it."""
        if self.is_finished or not self.is_expired(now):
            return False
        self.finish(self.Outcome.EXPIRED)
        return True

    def answered(self, token: str) -> str | None:
        """What the step with this idempotency token answered, if it was this call's last."""
        # Not a secret, but compared as one all the same: no == on tokens.
        if token and self.last_answer and constant_time_compare(token, self.idempotency_token):
            return self.last_answer
        return None

    def remember(self, token: str, answer: str) -> None:
        if self.is_ended:
            token = ""  # end() cleared the answer: a late step's goodbye is not kept either
        self.idempotency_token, self.last_answer = token, answer if token else ""

    def choose_language(self, digits: str) -> None:
        """The language menu's answer: the language the rest of the call is spoken in."""
        self.language = languages.for_keypress(digits)

    def accept_card(self, digits: str) -> Sealed:
        sealed = self._seal_entry("card", digits)
        self.state, self.tries = self.State.AWAITING_PIN, 0
        return sealed

    def accept_pin(self, digits: str) -> Sealed:
        return self._seal_entry("pin", digits)

    def _seal_entry(self, name: str, digits: str) -> Sealed:
        """With the HTTP resolver, sealed to the user's backend alone (keys.hpke): the session
        keeps that ciphertext only, which nothing this service holds can open."""
        if seals_for_backend():
            return self.seal_for_backend(name, digits)
        return self.seal(name, digits)

    def count_invalid(self) -> bool:
        """Count one bad entry at the current prompt; True when that used up the last try."""
        self.tries += 1
        if self.tries >= settings.SECUREGATHER_MAX_TRIES:
            self.finish(self.Outcome.RETRIES_EXHAUSTED)
            return True
        return False

    def verify(self) -> Resolution | None:
        """Resolve the sealed card and PIN, then wipe them whatever the answer.

        Raises ResolverUnavailable when the backend cannot answer and Locked when the caller or
        the account is locked out, after wiping in either case.
        """
        try:
            if self.card is not None and self.pin is not None and self.card.backend_kid:
                return resolve_sealed(
                    self.card.token, self.pin.token, self.caller, call_sid=self.call_sid
                )
            return resolve(
                self.unseal("card"),
                self.unseal("pin"),
                self.caller,
                call_sid=self.call_sid,
                attestation=self.attestation,
            )
        finally:
            self.wipe()

    def finish(self, outcome: str, account_number: str = "") -> None:
        self.wipe()
        self.state, self.outcome, self.account_number = self.State.FINISHED, outcome, account_number

    def lock_out(self) -> None:
        """The caller or the account is locked out: the call ends without a check of its PIN."""
        self.finish(self.Outcome.LOCKED_OUT)

    def end(self) -> None:
        """The call is over (status callback): nothing sealed outlives it."""
        self.wipe()
        self.idempotency_token = self.last_answer = ""
        self.ended_at = timezone.now()
        if not self.is_finished:
            self.finish(self.Outcome.HUNG_UP)

    def wipe(self) -> None:
        self.card = self.pin = None

    @classmethod
    def expire_all(cls, calls: models.QuerySet[CallSession], keys: list[tuple[Any, str]]) -> int:
        """What finish(EXPIRED), unless finished already, then end() and save() write, for many
        calls (``keys``: their pk and state) in at most two UPDATEs: purge_sessions' batches."""
        ended_at = timezone.now()  # save() stamps updated_at (auto_now) with the same moment
        written = {
            "card": None,
            "pin": None,
            "idempotency_token": "",
            "last_answer": "",
            "ended_at": ended_at,
            "updated_at": ended_at,
        }
        expired = {
            "state": cls.State.FINISHED,
            "outcome": cls.Outcome.EXPIRED,
            "account_number": "",
        }
        finished = [pk for pk, state in keys if state == cls.State.FINISHED]
        unfinished = [pk for pk, state in keys if state != cls.State.FINISHED]
        count = calls.filter(pk__in=finished).update(**written) if finished else 0
        if unfinished:
            count += calls.filter(pk__in=unfinished).update(**written, **expired)
        return count
