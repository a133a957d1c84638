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

from accounts import backend_client, lockout
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
    if seals_for_backend():
        # Only the user's backend checks digits then, and only sealed to it: a plaintext entry
        # (the decrypt API's) has nowhere to go, and a digest of it here would be reversible.
        raise ResolverUnavailable("backend_mode")
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


class HttpResolver:
    """Resolves at the user's own backend, over one signed HTTPS request (accounts.backend_client).

    Its values are sealed with HPKE to the backend's public key as they arrive (keys.hpke), so
    it takes tokens this service cannot open, never digits: see :func:`resolve_sealed`.
    """

    # The card and PIN steps seal to the backend instead of the keyring (CallSession.accept_*).
    seals_for_backend = True

    def resolve(self, card_last4: str, pin: str, caller: str) -> Resolution | None:
        raise ResolverUnavailable("backend_mode")

    def ask(self, card: str, pin: str, caller: str, call_sid: str) -> backend_client.BackendAnswer:
        try:
            return backend_client.ask(card, pin, caller, call_sid)
        except backend_client.BackendUnavailable as exc:
            raise ResolverUnavailable(str(exc)) from None
        except Exception as exc:
            # Whatever else fails (a client certificate that will not load, say) is an outage
            # too: the caller hears the apology, never a 500. The type only, as resolve() logs.
            backend_client.BREAKER.failed()
            raise ResolverUnavailable(type(exc).__name__) from None


def seals_for_backend() -> bool:
    """Whether the resolver in use takes values sealed to the user's backend (HttpResolver)."""
    return bool(getattr(import_string(settings.SECUREGATHER_RESOLVER), "seals_for_backend", False))


def hold_backend_counters(caller: str, account_ref: str, channel: str) -> lockout.Counters:
    """The caller's counter and, when the backend named one, its account reference's: keyed by
    what the backend said ("ref:<reference>"), never by anything derived from the digits."""
    keys = [(Lockout.Scope.CALLER.value, lockout.caller_key(caller))]
    if account_ref:
        # A card's counter (its policy bounds a month too), keyed by the reference: it names
        # no account of ours, so its audit rows name none either.
        keys.append((Lockout.Scope.CARD.value, f"ref:{account_ref}"))
    return lockout.Counters.hold(keys, channel=channel)


def resolve_sealed(
    card: str,
    pin: str,
    caller: str,
    *,
    call_sid: str,
    channel: str = AuditEvent.Channel.VOICE,
    actor: str = "twilio",
) -> Resolution | None:
    """:func:`resolve` for two tokens sealed to the user's backend, which only it can open.

    The caller's counter is held, and its lock refuses, before the request, as in resolve().
    A card's counter cannot be: nothing here may know the card, and a keyed digest of 4 digits
    falls to 10,000 tries with the service's own keys. So the account's counter is keyed by the
    opaque reference the backend returns when the card matched an account, and it counts a wrong
    PIN from then on; while it is locked, the backend's answer for that account, found or not,
    is withheld (Locked, nothing counted), so a guesser learns nothing past the lock. A card
    that matched no account counts on the caller's counter alone. The backend's own lock is
    Locked("backend").
    """
    resolver = get_resolver()
    if not isinstance(resolver, HttpResolver):
        # Tokens sealed to the backend while the settings named another resolver.
        raise ResolverUnavailable("not_backend_mode")
    locked = unavailable = resolution = None
    backend_locked = False
    # As in resolve(): no savepoint; what is raised is decided inside and raised after.
    with transaction.atomic(savepoint=False):
        counters = hold_backend_counters(caller, "", channel)
        locked = counters.lock()
        if locked is None:
            try:
                answer = resolver.ask(card, pin, caller, call_sid)
            except ResolverUnavailable as exc:
                logger.warning("backend resolver unavailable: %s", exc)
                unavailable = exc
            else:
                if answer.account_ref:
                    # Held after the answer, as only the answer names it: the caller's is held
                    # already, and every verification takes the caller's before an account's.
                    counters = hold_backend_counters(caller, answer.account_ref, channel)
                    locked = counters.lock()
                if locked is not None:
                    # The account is locked: its answer is withheld, and nothing is counted.
                    resolution = None
                elif answer.status == "locked":
                    backend_locked = True
                elif answer.status == "found":
                    resolution = Resolution(answer.account, answer.balance or Decimal(0))
                    counters.succeed(answer.account)
                else:
                    counters.fail(channel=channel, actor=actor, call_sid=call_sid)
    if locked is not None:
        raise Locked(locked.scope, locked.locked_until)
    if backend_locked:
        raise Locked("backend")
    if unavailable is not None:
        raise unavailable
    return resolution
