"""CallSession: one row per call, keyed by CallSid, holding the call's state and sealed digits.

No URL carries a digit or a ciphertext: each Gather posts back to a fixed action and the step
reads its state here. Sealed digits live only until the result is known.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from accounts.resolvers import Resolution, resolve
from calls import languages
from keys.sealed import Sealed, SealedField, SealedFieldsMixin

CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}")
ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")
# Twilio's I-Twilio-Idempotency-Token is opaque; anything else in the header is ignored.
IDEMPOTENCY_TOKEN = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")


def is_call_sid(value: str) -> bool:
    return CALL_SID.fullmatch(value) is not None


def clean_caller(value: str) -> str:
    """Twilio's From ("+15551234567", "client:alice", "anonymous"); anything unprintable → ""."""
    return value[:32] if value.isascii() and value.isprintable() else ""


def clean_account_sid(value: str) -> str:
    return value if ACCOUNT_SID.fullmatch(value) else ""


def clean_idempotency_token(value: str) -> str:
    return value if IDEMPOTENCY_TOKEN.fullmatch(value) else ""


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
    # The call's prompt language when the caller chose one; blank means the configured default.
    language = models.CharField(max_length=8, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.AWAITING_CARD)
    outcome = models.CharField(max_length=24, choices=Outcome.choices, blank=True)
    # Invalid entries at the current prompt; reset when the prompt changes.
    tries = models.PositiveSmallIntegerField(default=0)
    card = SealedField(context_field="call_sid")
    pin = SealedField(context_field="call_sid")
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
        """The call's session under a row lock held until the transaction ends, if it exists."""
        try:
            return cls.objects.select_for_update().get(call_sid=call_sid)
        except cls.DoesNotExist:
            return None

    @classmethod
    def start(cls, call_sid: str, account_sid: str, caller: str) -> tuple[CallSession, bool]:
        """The call's new session, and True; or, when another delivery of the call's webhook
        inserted one first, that one under a row lock, and False.

        Use inside transaction.atomic(): the row inserted here stays locked until it ends.
        """
        session = cls(call_sid=call_sid, account_sid=account_sid, caller=caller)
        try:
            # A savepoint: on PostgreSQL a failed INSERT aborts the whole transaction, and the
            # step still has to answer the call. bulk_create(ignore_conflicts=True) would need
            # none, but it cannot say whether this row or a racing delivery's was kept.
            with transaction.atomic():
                session.save(force_insert=True)
        except IntegrityError:
            # PostgreSQL held this INSERT until the racing delivery's step committed: the row
            # read here is the session as that step left it.
            return cls.objects.select_for_update().get(call_sid=call_sid), False
        return session, True

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
        sealed = self.seal("card", digits)
        self.state, self.tries = self.State.AWAITING_PIN, 0
        return sealed

    def accept_pin(self, digits: str) -> Sealed:
        return self.seal("pin", digits)

    def count_invalid(self) -> bool:
        """Count one bad entry at the current prompt; True when that used up the last try."""
        self.tries += 1
        if self.tries >= settings.SECUREGATHER_MAX_TRIES:
            self.finish(self.Outcome.RETRIES_EXHAUSTED)
            return True
        return False

    def restart(self) -> None:
        self.wipe()
        self.state, self.tries = self.State.AWAITING_CARD, 0

    def verify(self) -> Resolution | None:
        """Resolve the sealed card and PIN, then wipe them whatever the answer.

        Raises ResolverUnavailable when the backend cannot answer and Locked when the caller or
        the account is locked out, after wiping in either case.
        """
        try:
            return resolve(
                self.unseal("card"), self.unseal("pin"), self.caller, call_sid=self.call_sid
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
