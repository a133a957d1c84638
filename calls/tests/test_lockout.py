"""What a locked-out caller hears on the phone."""

from datetime import timedelta

import pytest

from accounts.models import Account
from accounts.resolvers import resolve
from audit.models import AuditEvent
from calls.models import CallSession
from conftest import CALLER, gather, hangs_up, spoken

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]
LOCKED = "Sorry, there have been too many attempts. Please try again later. Goodbye."


def call_with(call, card, pin, n):
    call.call_sid = "CA" + f"{n:032x}"
    call.start()
    call.card(card)
    return call.pin(pin)


def test_five_wrong_pins_lock_and_the_right_pin_then_hears_the_lock(call, demo_account):
    for n in range(5):
        call.caller = f"+1555000000{n}"  # five callers: only the account's count reaches 5
        assert "not able to locate you" in spoken(call_with(call, "1234", "0000", n))
    response = call_with(call, "1234", "4321", 5)
    assert spoken(response) == LOCKED and hangs_up(response)
    session = CallSession.objects.get(call_sid=call.call_sid)
    assert (session.outcome, session.card, session.pin) == ("locked_out", None, None)
    refused = AuditEvent.objects.get(event="locked_out", detail__action="refused")
    # Staff-only: the row names the account the card's lock refused the call for.
    assert (refused.detail["scope"], refused.account_number) == ("card", "AC12345678")
    assert not AuditEvent.objects.filter(event="verified").exists()
    # The lock was taken during the fifth call's PIN step: its row has that request's origin.
    locked = AuditEvent.objects.get(event="locked_out", detail__action="locked")
    assert (locked.origin_ip, locked.account_number) == ("127.0.0.1", "AC12345678")


def test_a_caller_with_five_wrong_pins_is_stopped_at_the_next_call(call, demo_account):
    for n in range(5):
        call_with(call, "1234", "0000", n)
    call.call_sid = "CA" + "77" * 16
    response = call.start()
    assert spoken(response) == LOCKED and hangs_up(response)


def test_a_locked_caller_hears_it_when_the_call_starts(call, demo_account):
    for _ in range(5):
        resolve("9999", "0000", CALLER)
    call.call_sid = "CA" + "12" * 16
    response = call.start()
    assert spoken(response) == LOCKED and gather(response) is None
    assert CallSession.objects.get().outcome == "locked_out"
    assert "card" not in spoken(call.card("1234"))  # nothing more to say on this call


def test_the_caller_is_heard_again_after_30_minutes(call, demo_account, clock):
    for _ in range(5):
        resolve("9999", "0000", CALLER)
    clock.shift(timedelta(minutes=30))
    assert "AC12345678" in spoken(call_with(call, "1234", "4321", 1))


def test_a_lock_on_the_card_is_heard_from_any_caller(call, demo_account):
    for n in range(5):
        resolve("1234", "0000", f"+1555000000{n}")
    call.caller = "+15557654321"
    assert spoken(call_with(call, "1234", "4321", 9)) == LOCKED
    event = AuditEvent.objects.get(event="locked_out", detail__action="refused")
    assert (event.detail["scope"], event.account_number) == ("card", "AC12345678")


def test_an_unknown_cards_lock_sounds_the_same_and_names_no_account(call, demo_account):
    for n in range(5):
        resolve("9999", "0000", f"+1555000000{n}")
    call.caller = "+15557654321"
    assert spoken(call_with(call, "9999", "4321", 9)) == LOCKED
    event = AuditEvent.objects.get(event="locked_out", detail__action="refused")
    assert (event.detail["scope"], event.account_number) == ("card", "")


def test_a_card_behind_two_accounts_refuses_with_a_row_for_each(call, demo_account):
    other = Account(number="AC87654321")
    other.set_credentials("1234", "9876")
    other.save()
    for n in range(5):
        resolve("1234", "0000", f"+1555000000{n}")
    call.caller = "+15557654321"
    assert spoken(call_with(call, "1234", "9876", 9)) == LOCKED
    refused = AuditEvent.objects.filter(event="locked_out", detail__action="refused")
    assert sorted(refused.values_list("account_number", flat=True)) == [
        "AC12345678",
        "AC87654321",
    ]


def test_the_attested_owner_gets_through_a_strangers_lock(call, demo_account):
    demo_account.caller_numbers = [CALLER]
    demo_account.save()
    for _ in range(5):
        resolve("1234", "0000", CALLER)  # spoofed: no attestation
    call.params = {"StirVerstat": "TN-Validation-Passed-A"}
    assert "AC12345678" in spoken(call_with(call, "1234", "4321", 8))
    assert CallSession.objects.get(call_sid=call.call_sid).attestation == ("TN-Validation-Passed-A")
    # Without the carrier's word, the same number is held by the lock at the call's start.
    call.params = {"StirVerstat": "TN-Validation-Passed-B"}
    call.call_sid = "CA" + "99" * 16
    assert spoken(call.start()) == LOCKED


def test_not_found_words_are_the_same_for_unknown_card_and_wrong_pin(call, demo_account):
    unknown = spoken(call_with(call, "9999", "4321", 1))
    wrong = spoken(call_with(call, "1234", "0000", 2))
    assert unknown == wrong == "We were not able to locate you in our system. Goodbye."
