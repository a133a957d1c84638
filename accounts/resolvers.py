"""Account resolution: (card last 4, PIN, caller number) → the caller's account, or nothing.

Everything that checks a caller's digits goes through :func:`resolve`, which hands them to the
backend named by ``SECUREGATHER_RESOLVER``. The plaintext digits live only inside that call.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from accounts.models import Account


@dataclass(frozen=True)
class Resolution:
    account_number: str
    balance: Decimal


class ResolverUnavailable(Exception):
    """The backend could not answer (timeout, outage): not the caller's fault, not a failure."""


class Locked(Exception):
    """The caller or the account is locked after too many failures: no verification is tried."""


class Resolver(Protocol):
    def resolve(self, card_last4: str, pin: str, caller: str) -> Resolution | None: ...


class DatabaseResolver:
    """Resolves against the Account table through the keyed card digest."""

    def resolve(self, card_last4: str, pin: str, caller: str) -> Resolution | None:
        candidates = list(Account.objects.filter(card_digest__in=Account.card_digests(card_last4)))
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


def resolve(card_last4: str, pin: str, caller: str) -> Resolution | None:
    return get_resolver().resolve(card_last4, pin, caller)
