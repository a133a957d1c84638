"""Account resolution: (card last 4, PIN, caller number) → the caller's account, or nothing.

Everything that checks a caller's digits goes through :func:`resolve`, which enforces the lockout
(accounts.lockout) and hands them to the backend named by ``SECUREGATHER_RESOLVER``. The
plaintext digits live only inside that call.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string

from accounts import lockout
from accounts.models import Account, Lockout
from audit.models import AuditEvent

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Resolution:
    account_number: str
    balance: Decimal


class ResolverUnavailable(Exception):
    """The backend could not answer (timeout, outage): not the caller's fault, not a failure."""


class Locked(Exception):
    """A counter of the verification is locked after too many failures: no PIN is checked."""

    def __init__(
        self, scope: str = "", until: datetime | None = None, accounts: Sequence[str] = ()
    ) -> None:
        super().__init__(scope)
        # Which counter holds the lock ("caller", "card" or "owner") and until when; for the
        # staff-only audit row, the accounts a card's or owner's lock refused the call for
        # (none for a card no account has).
        self.scope, self.until, self.accounts = scope, until, list(accounts)


class Resolver(Protocol):
    def resolve(self, card_last4: str, pin: str, caller: str) -> Resolution | None: ...


class DatabaseResolver:
    """Resolves against the Account table through the keyed card digest."""

    def resolve(self, card_last4: str, pin: str, caller: str) -> Resolution | None:
        return self.resolve_among(Account.for_card(card_last4), pin, caller)

    def resolve_among(self, candidates: list[Account], pin: str, caller: str) -> Resolution | None:
        """The same, given the accounts the card points to: :func:`resolve` has read them."""
        # Check the PIN of every candidate, and of a stand-in when there are none, so an unknown
        # card costs the same keyed work as a wrong PIN.
        found = None
        for account in candidates or [Account(number="", pin_digest="")]:
            if account.check_pin(pin) and account.accepts_caller(caller) and found is None:
                found = account
        if found is None:
            return None
        return Resolution(account_number=found.number, balance=found.balance)


def get_resolver() -> Resolver:
    return import_string(settings.SECUREGATHER_RESOLVER)()


def resolve(
    card_last4: str,
    pin: str,
    caller: str,
    *,
    channel: str = AuditEvent.Channel.VOICE,
    actor: str = "twilio",
    call_sid: str = "",
    attestation: str = "",
    caller_counter: str | None = None,
) -> Resolution | None:
    """The caller's account, or None (counted as a failure against the lockout).

    ``channel`` and ``actor`` are the caller's, as its own audit rows name them: a lock this
    failure takes is recorded under them. ``attestation`` is the call's SHAKEN/STIR verstat:
    full attestation from a number registered on an account makes the call its owner's.
    ``caller_counter`` names the caller's counter when ``caller`` is no phone number (the
    decrypt API's bearer token, lockout.api_caller).

    Raises Locked, before any check of the PIN, when a counter that refuses the verification
    is locked; raises ResolverUnavailable when the backend fails in any way, which counts
    against no one: an outage is not a wrong PIN.
    """
    locked = unavailable = None
    # No savepoint of its own: what this block raises is decided inside it and raised after it,
    # so the caller's transaction stays usable for its answer and audit rows.
    with transaction.atomic(savepoint=False):
        accounts = Account.for_card(card_last4)
        numbers = [account.number for account in accounts]
        card = (Lockout.Scope.CARD.value, lockout.card_key(card_last4))
        owned = (
            [account for account in accounts if account.registers(caller)]
            if lockout.is_fully_attested(attestation)
            else []
        )
        if owned:
            # The owner: refused only by its own counters, and checked against its own
            # accounts; its failures count on the card's counter too.
            refusing = [
                (Lockout.Scope.OWNER.value, lockout.owner_key(account.number, caller))
                for account in owned
            ]
            keys, accounts = [*refusing, card], owned
        else:
            who = lockout.caller_key(caller) if caller_counter is None else caller_counter
            keys = refusing = [card, (Lockout.Scope.CALLER.value, who)]
        counters = lockout.Counters.hold(keys, refusing=refusing, accounts=numbers, channel=channel)
        locked = counters.lock()
        if locked is None:
            try:
                resolver = get_resolver()
                if isinstance(resolver, DatabaseResolver):
                    # The accounts are read above: no query of its own, so no savepoint either.
                    resolution = resolver.resolve_among(accounts, pin, caller)
                else:
                    # A savepoint: a backend's database error must not abort the call's
                    # transaction.
                    with transaction.atomic():
                        resolution = resolver.resolve(card_last4, pin, caller)
            except ResolverUnavailable as exc:
                unavailable = exc
            except Exception as exc:
                # The type only: a backend's message may quote what it was given.
                logger.warning("resolver failed: %s", type(exc).__name__)
                unavailable = ResolverUnavailable(type(exc).__name__)
            else:
                if resolution is None:
                    counters.fail(channel=channel, actor=actor, call_sid=call_sid)
                else:
                    counters.succeed(resolution.account_number)
    if locked is not None:
        named = numbers if locked.scope == Lockout.Scope.CARD else locked.accounts()
        raise Locked(locked.scope, locked.locked_until, named)
    if unavailable is not None:
        raise unavailable
    return resolution
