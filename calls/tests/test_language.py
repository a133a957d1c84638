"""The opening language menu (SECUREGATHER_OFFER_LANGUAGES) and /voice/language/."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from calls.models import CallSession
from conftest import gather, parse, spoken

pytestmark = [pytest.mark.django_db]
ENGLISH_CARD = "Please enter last 4 digits of your payment card number."
SPANISH_CARD = "Por favor, ingrese los últimos 4 dígitos del número de su tarjeta de pago."


def says(response) -> list[tuple[str | None, str | None]]:
    return [(say.get("language"), say.text) for say in parse(response).iter("Say")]


def choose(call, digits: str | None):
    return call.twilio.post("/voice/language/", call._with_digits(digits))


@pytest.fixture(autouse=True)
def _offer(settings):
    settings.SECUREGATHER_OFFER_LANGUAGES = True


def test_the_call_opens_with_each_offer_in_its_own_language(call):
    response = call.start()
    assert says(response) == [
        ("en-US", "For English, press 1."),
        ("es-MX", "Para español, oprima 2."),
    ]
    assert [say.get("voice") for say in parse(response).iter("Say")] == [None, "Polly.Mia"]
    assert gather(response).attrib == {
        "input": "dtmf",
        "numDigits": "1",
        "timeout": "5",
        "method": "POST",
        "action": "/voice/language/",
        "actionOnEmptyResult": "true",
    }


@pytest.mark.parametrize(("digits", "language"), [("1", "en-US"), ("2", "es-MX"), ("7", "en-US")])
def test_the_choice_is_recorded_as_the_language_it_gave(call, digits, language):
    call.start()
    choose(call, digits)
    event = AuditEvent.objects.get(event="language_chosen")
    assert (event.call_sid, event.detail) == (call.call_sid, {"language": language})


def test_pressing_2_speaks_the_rest_of_the_call_in_spanish(call, demo_account):
    call.start()
    response = choose(call, "2")
    assert says(response) == [("es-MX", SPANISH_CARD)]
    assert gather(response).get("action") == "/voice/card/"
    assert CallSession.objects.get().language == "es-MX"
    assert says(call.card("1234"))[0][0] == "es-MX"
    assert says(call.pin("4321")) == [
        ("es-MX", "Gracias. Su número de cuenta es AC12345678 y su saldo es 12.55")
    ]


@override_settings(SECUREGATHER_LANGUAGE="es-MX")
def test_pressing_1_speaks_english_even_when_spanish_is_the_default(call, demo_account):
    call.start()
    assert says(choose(call, "1")) == [("en-US", ENGLISH_CARD)]
    call.card("1234")
    assert says(call.pin("0000")) == [
        ("en-US", "We were not able to locate you in our system. Goodbye.")
    ]


@override_settings(SECUREGATHER_LANGUAGE="es-ES")
def test_spanish_is_the_configured_spanish(call):
    offer = call.start()
    assert says(offer)[1] == ("es-ES", "Para español, oprima 2.")
    assert says(choose(call, "2")) == [("es-ES", SPANISH_CARD)]


@pytest.mark.parametrize("digits", [None, "", "9", "*"])
def test_anything_else_goes_on_in_the_configured_language(call, digits):
    call.start()
    assert says(choose(call, digits)) == [("en-US", ENGLISH_CARD)]
    assert CallSession.objects.get().language == "en-US"


def test_a_choice_after_the_card_does_not_rewind_the_call(call):
    call.start()
    choose(call, "2")
    call.card("1234")
    response = choose(call, "1")
    assert gather(response).get("action") == "/voice/pin/"
    assert says(response)[0][0] == "es-MX"
    assert CallSession.objects.get().language == "es-MX"


def test_a_choice_for_an_unknown_call_starts_at_the_card(call):
    response = choose(call, "2")
    assert gather(response).get("action") == "/voice/card/"
    # No opening was heard, so there was no menu to answer: the choice is out of order.
    assert CallSession.objects.get().language == ""
    event = AuditEvent.objects.get()
    assert (event.event, event.detail) == (
        "out_of_order",
        {"step": "language", "state": "awaiting_card"},
    )


def test_the_language_webhook_is_signed(call):
    response = call.twilio.post("/voice/language/", call.base(), signature="forged")
    assert response.status_code == 403


def test_without_the_offer_the_call_opens_at_the_card(call, settings):
    settings.SECUREGATHER_OFFER_LANGUAGES = False
    assert spoken(call.start()) == ENGLISH_CARD


def test_simulate_call_presses_the_menu_choice(demo_account, capsys):
    call_command("simulate_call", "--card", "1234", "--pin", "4321", "--menu", "2")
    out = capsys.readouterr().out
    assert "Caller hears: For English, press 1." in out
    assert "Caller presses: *\n" in out
    assert "Caller hears: Gracias. Su número de cuenta es AC12345678 y su saldo es 12.55" in out


def test_a_body_past_djangos_limits_is_a_bad_request_before_any_language_lookup(call):
    call.start()
    many = {**call.base(), **{f"x{i}": "1" for i in range(1000)}}
    response = call.twilio.post("/voice/card/", many)
    assert (response.status_code, response.content) == (400, b"Unreadable request body.")


@pytest.mark.parametrize("sid", ["CA\x00" + "0" * 31, "CA12", ""])
def test_a_malformed_call_sid_is_refused_by_the_step_without_a_language_lookup(call, sid):
    call.call_sid = sid
    with CaptureQueriesContext(connection) as queries:
        response = call.twilio.post("/voice/card/", call._with_digits("1234"))
    assert response.status_code == 400
    # No session is looked for (the language's nor the step's): only the refusal's audit row.
    assert not [q for q in queries if CallSession._meta.db_table in q["sql"]]
    assert AuditEvent.objects.get().detail == {"path": "/voice/card/", "reason": "call_sid"}
