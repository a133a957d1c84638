"""Accounts callers identify themselves to, with credentials kept sealed and keyed-digested."""

from __future__ import annotations

import hmac
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models, transaction

from audit.models import AuditEvent
from audit.phones import e164, mask_phone
from keys.keyring import get_keyring
from keys.sealed import DigestField, SealedField, SealedFieldsMixin

CARD_PURPOSE = "accounts.Account.card_last4"
PIN_PURPOSE = "accounts.Account.pin"


# A card's last 4 and a PIN are 4 ASCII digits: str.isdigit() and \d accept "١٢٣٤" and "¹²³⁴",
# which are not keypad presses.
FOUR_DIGITS = re.compile(r"[0-9]{4}")


def is_four_digits(value: str) -> bool:
    return FOUR_DIGITS.fullmatch(value) is not None


# A dialable number in E.164: "+" and 7 to 15 digits, the first not 0.
E164 = re.compile(r"\+[1-9][0-9]{6,14}")


def validate_callers(value: object) -> None:
    if not isinstance(value, list) or not all(
        isinstance(number, str) and E164.fullmatch(number) for number in value
    ):
        raise ValidationError(
            'Caller numbers are a list of E.164 numbers, e.g. ["+15551234567"].',
            code="invalid_callers",
        )


class Account(SealedFieldsMixin, models.Model):
    number = models.CharField(max_length=32, unique=True)
    balance = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    # When not empty, the account resolves only for calls from these numbers (E.164).
    caller_numbers = models.JSONField(default=list, blank=True, validators=[validate_callers])
    card_last4 = SealedField(context_field="number")
    pin = SealedField(context_field="number")
    # Keyed digests ("kid:hex"). A 4-digit value has 10,000 possibilities, so a bare hash of it
    # would be reversed in milliseconds; an HMAC under a keyring subkey is not. The account
    # number salts the PIN digest: equal PINs on two accounts differ.
    card_digest = DigestField(purpose=CARD_PURPOSE, source="card_last4", db_index=True)
    pin_digest = DigestField(purpose=PIN_PURPOSE, source="pin", salt_field="number")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return self.number

    @staticmethod
    def card_digests(card_last4: str) -> list[str]:
        """The lookup digests of a card's last 4 under every key in the ring."""
        return get_keyring().digests(card_last4, CARD_PURPOSE)

    @classmethod
    def for_card(cls, card_last4: str) -> list[Account]:
        """The accounts whose card digest matches the digits under any key in the ring."""
        return list(cls.objects.filter(card_digest__in=cls.card_digests(card_last4)))

    def set_credentials(self, card_last4: str, pin: str) -> None:
        """Seal and digest both credentials under the primary key. Does not save."""
        self.seal("card_last4", card_last4)
        self.seal("pin", pin)
        self.card_digest = self.digest_of("card_digest", card_last4)
        self.pin_digest = self.digest_of("pin_digest", pin)

    def check_pin(self, pin: str) -> bool:
        """Compare in constant time, under whichever key made the stored digest."""
        ring = get_keyring()
        kid = self.pin_digest.partition(":")[0]
        known = kid in ring.keys
        # Do the keyed work even for an unknown key id: the answer's timing says nothing.
        expected = self.digest_of("pin_digest", pin, kid if known else None)
        return hmac.compare_digest(expected, self.pin_digest) and known

    def registers(self, caller: str) -> bool:
        """Whether ``caller`` is one of the numbers registered on the account."""
        numbers = self.caller_numbers if isinstance(self.caller_numbers, list) else []
        return bool(caller) and caller in numbers

    def accepts_caller(self, caller: str) -> bool:
        # A list, never a string: "caller in a_string" would match any part of a number.
        numbers = self.caller_numbers if isinstance(self.caller_numbers, list) else []
        return not self.caller_numbers or caller in numbers


class Lockout(models.Model):
    """Recent failed verifications counted on one counter, and its lock if any.

    One row per counter, taken with a row lock for the whole of a verification, so that workers
    on any number of hosts count the same failures and no two verifications sharing a counter
    overlap. Policy (how many, how long) lives in accounts.lockout.
    """

    class Scope(models.TextChoices):
        # One caller: its E.164 number, "withheld" for every call without a number we can
        # count, or "api:<id>" for a bearer token of the decrypt API.
        CALLER = "caller"
        # One card's last 4, by its keyed digest under the primary key (as Account.card_digest
        # holds it): every account the card points to, and just as well a card no account has.
        CARD = "card"
        # An account's own registered number, on calls that carry full (A) attestation:
        # "<account number>|<caller number>".
        OWNER = "owner"

    scope = models.CharField(max_length=8, choices=Scope.choices)
    key = models.CharField(max_length=128)
    # When each failure still counted happened (ISO 8601), oldest first.
    failures = models.JSONField(default=list, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["scope", "key"]
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="accounts_lockout_scope_key")
        ]
        # Lifting is its own right: "ops" may watch who is locked out without being able to
        # undo a lock (a superuser has it; grant it to a group of supervisors).
        permissions = [("lift_lockout", "Can lift a lockout")]

    def __str__(self) -> str:
        return f"{self.scope} {self.masked_key}"

    @property
    def masked_key(self) -> str:
        """The key as staff may see it: a caller's number masked, a card's digest shortened."""
        if self.scope == self.Scope.CARD:
            kid, _, mac = self.key.partition(":")
            return f"{kid}:{mac[:8]}…"
        if self.scope == self.Scope.OWNER:
            account, _, caller = self.key.partition("|")
            return f"{account} from {mask_phone(caller)}"
        return mask_phone(self.key) if E164.fullmatch(self.key) else self.key

    @classmethod
    def matching(cls, text: str) -> models.Q:
        """The counters that ``text`` names: a caller number in any common spelling, an
        account number (its card's counter and its owner counters), or a key as stored."""
        text = text.strip()
        found = models.Q(key=text)
        if (number := e164(text)) is not None:
            found |= models.Q(scope=cls.Scope.CALLER, key=number)
            found |= models.Q(scope=cls.Scope.OWNER, key__endswith=f"|{number}")
        account = Account.objects.filter(number=text).only("card_digest").first()
        if account is not None:
            found |= models.Q(scope=cls.Scope.CARD, key=account.card_digest)
            found |= models.Q(scope=cls.Scope.OWNER, key__startswith=f"{text}|")
        return found

    def accounts(self) -> list[str]:
        """The account numbers this counter stands for (a query, for staff work only)."""
        if self.scope == self.Scope.OWNER:
            return [self.key.partition("|")[0]]
        if self.scope == self.Scope.CARD:
            return list(
                Account.objects.filter(card_digest=self.key).values_list("number", flat=True)
            )
        return []

    def is_locked(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until

    def recent_failures(self, now: datetime, window: timedelta) -> list[datetime]:
        return [when for when in map(datetime.fromisoformat, self.failures) if when > now - window]

    def fail(
        self,
        now: datetime,
        *,
        limit: int,
        window: timedelta,
        duration: timedelta,
        ceiling: int | None = None,
        ceiling_window: timedelta | None = None,
        **audit: Any,
    ) -> bool:
        """Count one failure and lock (audited) when it makes ``limit`` within ``window``: for
        ``duration``; or ``ceiling`` within ``ceiling_window``: until the oldest of them leaves
        that window, so no ``ceiling_window`` ever holds more than ``ceiling`` failures.

        True when this failure locked. Does not save.
        """
        kept = ceiling_window if ceiling is not None and ceiling_window is not None else window
        recent = [*self.recent_failures(now, kept), now]
        if ceiling is not None:
            # Only the newest ``ceiling`` matter: the row stays small whatever happens.
            recent = recent[-ceiling:]
        # Kept when it locks too: while they are within the window, the next failure after the
        # lock locks again at once. A lock then buys a guesser one more try, not ``limit`` more.
        self.failures = [when.isoformat() for when in recent]
        if ceiling is not None and ceiling_window is not None and len(recent) >= ceiling:
            # At least ``duration`` (PCI DSS 8.3.4's 30 minutes), whatever the window says.
            self.locked_until = max(recent[0] + ceiling_window, now + duration)
        elif sum(when > now - window for when in recent) >= limit:
            self.locked_until = now + duration
        else:
            return False
        self._audit(
            AuditEvent.Event.LOCKED_OUT,
            AuditEvent.Outcome.FAILURE,
            action="locked",
            failures=len(recent),
            until=self.locked_until.isoformat(),
            **audit,
        )
        return True

    def forget_failures(self) -> None:
        """A verified call clears the count it was made on. Does not save."""
        self.failures = []

    def expire(
        self,
        now: datetime,
        *,
        channel: str = AuditEvent.Channel.VOICE,
        accounts: Sequence[str] | None = None,
    ) -> bool:
        """Clear a lock whose time is up (audited once, when next seen, on the ``channel`` that
        saw it). Does not save."""
        if self.locked_until is None or self.is_locked(now):
            return False
        self.locked_until = None
        self._audit(
            AuditEvent.Event.UNLOCKED,
            AuditEvent.Outcome.INFO,
            actor="system",
            channel=channel,
            reason="expired",
            accounts=accounts,
        )
        return True

    def lift(self, by: str, *, channel: str = AuditEvent.Channel.SYSTEM, **detail: Any) -> None:
        """Staff lift the lock and forget the failures, audited under their name; saves."""
        self.locked_until, self.failures = None, []
        with transaction.atomic():  # no lift without its row
            self.save()
            self._audit(
                AuditEvent.Event.UNLOCKED,
                AuditEvent.Outcome.INFO,
                actor=by,
                channel=channel,
                reason="lifted",
                **detail,
            )

    def _audit(
        self, event: str, outcome: str, accounts: Sequence[str] | None = None, **detail: Any
    ) -> None:
        from staff.auditing import served  # it imports the admin's models

        # A lock is taken in the middle of a call's step (or a staff lift): its origin is the
        # request being served, which the resolver that counts failures is not handed.
        detail.setdefault("request", served())
        if self.scope == self.Scope.CALLER:
            if E164.fullmatch(self.key):
                AuditEvent.record(event, outcome, caller=self.key, scope=self.scope, **detail)
            else:
                # "withheld" or "api:<id>": no number to mask, and none to search for.
                AuditEvent.record(event, outcome, counter=self.key, scope=self.scope, **detail)
            return
        if self.scope == self.Scope.OWNER:
            account, _, caller = self.key.partition("|")
            AuditEvent.record(
                event, outcome, account_number=account, caller=caller, scope=self.scope, **detail
            )
            return
        # A card's counter names the accounts it stands for: none for a card no account has.
        # In a call's step the resolver hands them over (it has read them, for known and
        # unknown cards alike); staff work reads them here.
        numbers = list(self.accounts() if accounts is None else accounts)
        if len(numbers) > 1:
            detail["accounts"] = numbers
        AuditEvent.record(
            event,
            outcome,
            account_number=numbers[0] if numbers else "",
            scope=self.scope,
            **detail,
        )


class GuessingWindow(models.Model):
    """Failed verifications across all accounts in one window of the guessing watch.

    One row per window, row-locked by each failure that counts on it: the worker whose failure
    crosses the threshold is the one that marks it reported, so a window has at most one
    ``guessing_suspected`` row whatever the number of workers and hosts.
    """

    start = models.DateTimeField(unique=True)
    failures = models.PositiveIntegerField(default=0)
    # When this window went over the threshold (and its audit row was written).
    reported_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-start"]

    def __str__(self) -> str:
        return f"{self.start:%Y-%m-%d %H:%M} {self.failures}"

    @classmethod
    def locked(cls, start: datetime) -> GuessingWindow:
        """The window starting at ``start``, created if needed, row-locked until commit."""
        # Inserted first without a savepoint (ON CONFLICT DO NOTHING), as Counters.hold does:
        # a racing worker's row wins, and both then wait on the same one.
        GuessingWindow.objects.bulk_create([GuessingWindow(start=start)], ignore_conflicts=True)
        return GuessingWindow.objects.select_for_update().get(start=start)

    def count(self, now: datetime, threshold: int) -> bool:
        """Count one failure; True when it is the one that crossed ``threshold``. Saves."""
        self.failures += 1
        crossed = self.failures >= threshold and self.reported_at is None
        if crossed:
            self.reported_at = now
        self.save(update_fields=["failures", "reported_at"])
        return crossed
