"""Accounts callers identify themselves to, with credentials kept sealed and keyed-digested."""

from __future__ import annotations

import hmac
from decimal import Decimal

from django.db import models

from securegather.keyring import get_keyring
from securegather.sealed import DigestField, SealedField, SealedFieldsMixin

CARD_PURPOSE = "accounts.Account.card_last4"
PIN_PURPOSE = "accounts.Account.pin"


class Account(SealedFieldsMixin, models.Model):
    number = models.CharField(max_length=32, unique=True)
    balance = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    # When not empty, the account resolves only for calls from these numbers (E.164).
    caller_numbers = models.JSONField(default=list, blank=True)
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

    def set_credentials(self, card_last4: str, pin: str) -> None:
        """Seal and digest both credentials under the primary key. Does not save."""
        self.seal("card_last4", card_last4)
        self.seal("pin", pin)
        self.card_digest = self._meta.get_field("card_digest").compute(self, card_last4)
        self.pin_digest = self._meta.get_field("pin_digest").compute(self, pin)

    def check_pin(self, pin: str) -> bool:
        """Compare in constant time, under whichever key made the stored digest."""
        ring = get_keyring()
        kid = self.pin_digest.partition(":")[0]
        known = kid in ring.keys
        # Do the keyed work even for an unknown key id: the answer's timing says nothing.
        field = self._meta.get_field("pin_digest")
        expected = field.compute(self, pin, kid if known else None)
        return hmac.compare_digest(expected, self.pin_digest) and known

    def accepts_caller(self, caller: str) -> bool:
        return not self.caller_numbers or caller in self.caller_numbers
