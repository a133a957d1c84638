"""CallSession: one row per call, keyed by CallSid, holding the call's state and sealed digits.

No URL carries a digit or a ciphertext: each Gather posts back to a fixed action and the step
reads its state here. Sealed digits live only until the result is known.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.resolvers import Resolution, resolve
from securegather.sealed import SealedField, SealedFieldsMixin

CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}")
# ASCII only: str.isdigit() and \d accept "١٢٣٤" and "¹²³⁴", which are not keypad presses.
FOUR_DIGITS = re.compile(r"[0-9]{4}")


def is_call_sid(value: str) -> bool:
    return CALL_SID.fullmatch(value) is not None


def is_four_digits(value: str) -> bool:
    return FOUR_DIGITS.fullmatch(value) is not None


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
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.call_sid

    @property
    def is_finished(self) -> bool:
        return self.state == self.State.FINISHED

    def accept_card(self, digits: str) -> None:
        self.seal("card", digits)
        self.state, self.tries = self.State.AWAITING_PIN, 0

    def accept_pin(self, digits: str) -> None:
        self.seal("pin", digits)

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

        Raises ResolverUnavailable (after wiping) when the backend cannot answer.
        """
        try:
            return resolve(self.unseal("card"), self.unseal("pin"), self.caller)
        finally:
            self.wipe()

    def finish(self, outcome: str, account_number: str = "") -> None:
        self.wipe()
        self.state, self.outcome, self.account_number = self.State.FINISHED, outcome, account_number

    def end(self) -> None:
        """The call is over (status callback): nothing sealed outlives it."""
        self.wipe()
        self.ended_at = timezone.now()
        if not self.is_finished:
            self.finish(self.Outcome.HUNG_UP)

    def wipe(self) -> None:
        self.card = self.pin = None
