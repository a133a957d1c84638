"""/voice/fallback/: Twilio's fallback URL answers an apology without touching the database.

These tests hold no database access: pytest-django fails any query they would make.
"""

import logging

from django.test import override_settings

from conftest import ACCOUNT_SID, CALL_SID, hangs_up, spoken

PARAMS = {
    "CallSid": CALL_SID,
    "AccountSid": ACCOUNT_SID,
    "From": "+15005550006",
    "Digits": "8264",
    "ErrorCode": "11200",
    "ErrorUrl": "https://voice.example.com/voice/pin/",
}


def test_the_fallback_apologises_and_hangs_up(twilio, caplog):
    caplog.set_level(logging.INFO)
    response = twilio.post("/voice/fallback/", PARAMS)
    assert "Sorry" in spoken(response) and hangs_up(response)
    assert "Twilio error 11200" in caplog.text
    assert "8264" not in caplog.text and b"8264" not in response.content


def test_a_bad_signature_is_refused_without_an_audit_row(twilio, caplog):
    response = twilio.post("/voice/fallback/", PARAMS, signature="forged")
    assert response.status_code == 403
    assert "invalid Twilio signature" in caplog.text


def test_an_error_code_that_is_not_twilios_is_not_logged(twilio, caplog):
    twilio.post("/voice/fallback/", {**PARAMS, "ErrorCode": "<x>8264"})
    assert "Twilio error ?" in caplog.text and "8264" not in caplog.text


@override_settings(DEBUG=True)
def test_get_is_not_allowed(twilio):
    assert twilio.client.get("/voice/fallback/").status_code == 405


@override_settings(SECUREGATHER_OFFER_LANGUAGES=True)
def test_the_fallback_needs_no_database_with_the_language_menu_on(twilio):
    assert "Sorry" in spoken(twilio.post("/voice/fallback/", PARAMS))


def test_a_request_for_another_twilio_account_is_refused(twilio):
    with override_settings(TWILIO_ACCOUNT_SID="AC" + "00" * 16):
        assert twilio.post("/voice/fallback/", PARAMS).status_code == 403
    with override_settings(TWILIO_ACCOUNT_SID=ACCOUNT_SID):
        assert twilio.post("/voice/fallback/", PARAMS).status_code == 200


def test_a_body_past_djangos_limits_is_refused_without_an_audit_row(twilio, caplog):
    many = {**PARAMS, **{f"x{i}": "1" for i in range(1000)}}
    response = twilio.post("/voice/fallback/", many)
    assert (response.status_code, response.content) == (400, b"Unreadable request body.")
    assert "unreadable request body" in caplog.text and "8264" not in caplog.text
