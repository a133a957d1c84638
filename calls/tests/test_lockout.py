"""What a locked-out caller hears on the phone."""

from datetime import timedelta

import pytest

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
    refused = AuditEvent.objects.filter(event="locked_out", detail__action="refused")
    assert refused.count() == 1
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


def test_a_lock_on_the_account_is_heard_from_any_caller(call, demo_account):
    for n in range(5):
        resolve("1234", "0000", f"+1555000000{n}")
    call.caller = "+15557654321"
    assert spoken(call_with(call, "1234", "4321", 9)) == LOCKED
    event = AuditEvent.objects.get(event="locked_out", detail__action="refused")
    assert event.detail["scope"] == "account"


def test_not_found_words_are_the_same_for_unknown_card_and_wrong_pin(call, demo_account):
    unknown = spoken(call_with(call, "9999", "4321", 1))
    wrong = spoken(call_with(call, "1234", "0000", 2))
    assert unknown == wrong == "We were not able to locate you in our system. Goodbye."
