from unittest import mock

import pytest
from django.test import override_settings

from accounts.resolvers import Locked, ResolverUnavailable
from audit.models import AuditEvent
from calls.models import CallSession
from conftest import gather, hangs_up, spoken

pytestmark = pytest.mark.django_db


def events():
    return list(AuditEvent.objects.order_by("id").values_list("event", flat=True))


def test_right_card_and_pin_hear_account_and_balance(call, demo_account, plaintext):
    call.start()
    call.card("1234")
    response = call.pin("4321")
    assert spoken(response) == (
        "Thank you. Your account number is AC12345678 and your balance is 12.55"
    )
    assert hangs_up(response)
    session = CallSession.objects.get()
    assert (session.state, session.outcome, session.account_number) == (
        "finished",
        "verified",
        "AC12345678",
    )
    assert (session.card, session.pin) == (None, None)
    assert events() == ["call_started", "card_entered", "pin_entered", "verified"]
    assert AuditEvent.objects.get(event="verified").account_number == "AC12345678"
    plaintext.assert_absent("1234", "4321")


@pytest.mark.parametrize(("card", "pin"), [("1234", "0000"), ("9999", "4321")])
def test_wrong_pin_or_unknown_card_hear_not_found(call, demo_account, plaintext, card, pin):
    call.start()
    call.card(card)
    response = call.pin(pin)
    assert spoken(response) == "We were not able to locate you in our system. Goodbye."
    assert hangs_up(response)
    session = CallSession.objects.get()
    assert (session.outcome, session.card, session.pin) == ("not_found", None, None)
    assert events()[-1] == "not_found"
    plaintext.assert_absent(card, pin)


def test_invalid_pin_reprompts_for_the_pin_and_keeps_the_card(call, demo_account):
    call.start()
    call.card("1234")
    response = call.pin("43")
    assert gather(response).get("action") == "/voice/pin/"
    assert "not 4 digits" in spoken(response)
    assert "AC12345678" in spoken(call.pin("4321"))


def test_pin_retries_exhausted_wipe_the_card(call, demo_account):
    call.start()
    call.card("1234")
    for digits in ("", "1", "abcd"):
        response = call.pin(digits)
    assert hangs_up(response)
    session = CallSession.objects.get()
    assert (session.outcome, session.card) == ("retries_exhausted", None)


def test_pin_before_card_restarts_at_the_card(call, demo_account):
    call.start()
    response = call.pin("4321")
    assert gather(response).get("action") == "/voice/card/"
    assert CallSession.objects.get().pin is None
    assert events()[-1] == "out_of_order"


def test_pin_for_an_unknown_call_restarts_cleanly(call, demo_account):
    response = call.pin("4321")
    assert gather(response).get("action") == "/voice/card/"
    assert CallSession.objects.get().state == "awaiting_card"


def test_pin_again_after_the_result_does_not_resolve_twice(call, demo_account):
    call.start()
    call.card("1234")
    call.pin("4321")
    response = call.pin("4321")
    assert "already been handled" in spoken(response)
    assert events().count("verified") == 1


class Unavailable:
    def resolve(self, card_last4, pin, caller):
        raise ResolverUnavailable


@override_settings(SECUREGATHER_RESOLVER="calls.tests.test_pin.Unavailable")
def test_resolver_outage_is_not_a_failed_pin(call, plaintext):
    call.start()
    call.card("8264")
    response = call.pin("5937")
    assert "try later" in spoken(response) and hangs_up(response)
    session = CallSession.objects.get()
    assert (session.outcome, session.card, session.pin) == ("resolver_unavailable", None, None)
    assert events()[-1] == "resolver_unavailable"
    assert "not_found" not in events()
    plaintext.assert_absent("8264", "5937")


@pytest.mark.parametrize("raised", [Locked("caller"), ResolverUnavailable()])
def test_verify_wipes_the_sealed_digits_when_no_answer_comes(raised):
    # CallSession.verify wipes whatever resolve() does: the step that called it need not.
    session = CallSession(call_sid="CA" + "57" * 16, caller="+15005550006")
    session.seal("card", "8264")
    session.seal("pin", "5937")
    with (
        mock.patch("calls.models.resolve", autospec=True, side_effect=raised) as resolve,
        pytest.raises(type(raised)),
    ):
        session.verify()
    resolve.assert_called_once_with(
        "8264", "5937", "+15005550006", call_sid=session.call_sid, attestation=""
    )
    assert (session.card, session.pin) == (None, None)
