"""Calls made with known digits, for tests that look for those digits where they must not be."""

import pytest
from django.contrib.auth.models import User

from accounts.models import Account
from conftest import CALL_SID

CARD, PIN = "7391", "2846"  # the account's, typed on the verified call
WRONG_PIN = "5082"  # typed on the not-found call
STRAY_CARD = "6619"  # typed on a call that hung up before its PIN: sealed, then wiped
OPEN_CARD = "4470"  # typed on a call still waiting for its PIN: sealed on the session
PLANTED = (CARD, PIN, WRONG_PIN, STRAY_CARD, OPEN_CARD)


@pytest.fixture
def calls_made(call, superuser):
    account = Account(number="AC55500011")
    account.set_credentials(CARD, PIN)
    account.save()
    for n, (card, pin, hang_up) in enumerate(
        [
            (CARD, PIN, True),
            (CARD, WRONG_PIN, True),
            (STRAY_CARD, None, True),
            (OPEN_CARD, None, False),
        ]
    ):
        call.call_sid = CALL_SID[:-2] + f"{n:02d}"
        call.start()
        call.card(card)
        call.card("12")  # an invalid entry at the PIN prompt, audited as out of order or invalid
        if pin:
            call.pin(pin)
        if hang_up:
            call.status()
    for staff in ("pat", "quinn"):
        User.objects.create_user(staff, password="another long password")
