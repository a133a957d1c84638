"""Webhook URLs as they may be typed into Twilio's console: with or without the final slash."""

from __future__ import annotations

import pytest
from django.test import override_settings
from django.urls import reverse

from audit.models import AuditEvent
from calls.models import CallSession
from conftest import gather, parse, spoken

pytestmark = pytest.mark.django_db


def test_a_call_whose_urls_lack_the_slash_is_served_without_a_redirect(
    call, demo_account, plaintext
):
    post = call.twilio.post
    opened = post("/voice", call.base())
    card = post("/voice/card", call._with_digits("1234"))
    pin = post("/voice/pin", call._with_digits("4321"))
    status = post("/voice/status", {**call.base(), "CallStatus": "completed"})
    assert [r.status_code for r in (opened, card, pin, status)] == [200] * 4
    # The answers still name the URLs with their slash.
    assert gather(opened).get("action") == "/voice/card/"
    assert gather(card).get("action") == "/voice/pin/"
    assert spoken(pin).startswith("Thank you. Your account number is AC12345678")
    assert CallSession.objects.get().ended_at is not None
    events = list(AuditEvent.objects.order_by("id").values_list("event", flat=True))
    assert events[0] == AuditEvent.Event.CALL_STARTED
    assert AuditEvent.Event.VERIFIED in events
    plaintext.assert_absent("1234", "4321")


@override_settings(SECUREGATHER_LANGUAGE="es-MX")
def test_a_step_without_the_slash_speaks_the_calls_language(call, demo_account):
    opened = call.twilio.post("/voice", call.base())
    assert {say.get("language") for say in parse(opened).iter("Say")} == {"es-MX"}
    card = call.twilio.post("/voice/card", call._with_digits("1234"))
    assert {say.get("language") for say in parse(card).iter("Say")} == {"es-MX"}


def test_the_signature_covers_the_url_as_called(call):
    # Signed for the URL with its slash, posted without: not the request Twilio signed.
    response = call.twilio.post(
        "/voice/card", call._with_digits("1234"), signed_url="http://testserver/voice/card/"
    )
    assert response.status_code == 403


@override_settings(SECUREGATHER_OFFER_LANGUAGES=True)  # the call's language is not looked up
def test_the_fallback_without_the_slash_still_asks_no_database(call, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = call.twilio.post("/voice/fallback", call.base())
    assert response.status_code == 200
    assert spoken(response).startswith("Sorry, we cannot take your details right now.")


@pytest.mark.parametrize("name", ["incoming", "language", "card", "pin", "status", "fallback"])
def test_reversed_urls_keep_the_slash(name):
    assert reverse(f"calls:{name}").endswith("/")


@pytest.mark.parametrize("path", ["/voicecard", "/voicecard/", "/voice/card//", "/voice/cards"])
def test_near_misses_are_not_steps(twilio, path):
    assert twilio.post(path, {}).status_code == 404
