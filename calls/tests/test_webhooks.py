"""The signature check and the TwiML answer to failures, exercised through the voice webhook."""

import logging
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from audit.models import AuditEvent
from calls.models import CallSession
from conftest import ACCOUNT_SID, CALL_SID, GoneMidBody

PARAMS = {"CallSid": CALL_SID, "AccountSid": ACCOUNT_SID, "From": "+15005550006"}


@pytest.fixture(autouse=True)
def _db(db):
    pass


def test_signed_request_is_accepted(twilio):
    assert twilio.post("/voice/", PARAMS).status_code == 200


def test_unsigned_request_is_refused_and_audited(twilio):
    response = twilio.post("/voice/", PARAMS, signature="")
    assert response.status_code == 403
    event = AuditEvent.objects.get()
    assert (event.event, event.outcome, event.call_sid) == (
        "signature_rejected",
        "failure",
        CALL_SID,
    )
    assert not CallSession.objects.exists()


@pytest.mark.parametrize(
    "call_sid",
    [
        "CA" + "ab" * 16 + "4729",  # too long
        "CA" + "ab" * 15 + "<>",  # the right length, not alphanumeric
        "CA" + "\u0664" * 32,  # Arabic-Indic digits: alphanumeric, not ASCII
        "XX" + "ab" * 16,  # not a call's
    ],
)
def test_an_unsigned_request_keeps_no_call_sid_that_is_not_in_twilios_shape(twilio, call_sid):
    # The sender of an unsigned request is anyone: what it calls a CallSid could be anything.
    response = twilio.post("/voice/", {**PARAMS, "CallSid": call_sid}, signature="")
    assert response.status_code == 403
    event = AuditEvent.objects.get()
    assert (event.event, event.call_sid) == ("signature_rejected", "")


def test_request_signed_with_another_token_is_refused(twilio):
    with override_settings(TWILIO_AUTH_TOKEN="another-token"):
        response = twilio.post("/voice/", PARAMS)  # signed with another-token…
    assert (
        twilio.post(
            "/voice/", PARAMS, signature=response.request["HTTP_X_TWILIO_SIGNATURE"]
        ).status_code
        == 403
    )  # …checked against the real one


def test_altered_parameters_break_the_signature(twilio):
    good = twilio.post("/voice/card/", {**PARAMS, "Digits": "8264"})
    signature = good.request["HTTP_X_TWILIO_SIGNATURE"]
    forged = twilio.post("/voice/card/", {**PARAMS, "Digits": "5937"}, signature=signature)
    assert forged.status_code == 403


def test_signature_for_another_path_is_refused(twilio):
    response = twilio.post("/voice/card/", PARAMS, signed_url="http://testserver/voice/")
    assert response.status_code == 403


@override_settings(DEBUG=True)
def test_debug_does_not_turn_the_check_off(twilio):
    assert twilio.post("/voice/", PARAMS, signature="").status_code == 403


@override_settings(TWILIO_AUTH_TOKEN="")
def test_without_an_auth_token_everything_is_refused(twilio):
    assert twilio.post("/voice/", PARAMS, signature="anything").status_code == 403


@override_settings(TWILIO_AUTH_TOKEN="")
def test_without_an_auth_token_a_signature_under_the_empty_key_is_refused(twilio):
    # Anyone can compute an HMAC under an empty key: it proves nothing about the sender.
    response = twilio.post("/voice/", PARAMS)  # signed with the (empty) configured token
    assert response.request["HTTP_X_TWILIO_SIGNATURE"]
    assert response.status_code == 403
    assert not CallSession.objects.exists()


@override_settings(SECUREGATHER_PUBLIC_URL="https://voice.example.com")
def test_behind_a_proxy_the_public_url_is_what_twilio_signed(twilio):
    ok = twilio.post("/voice/", PARAMS, signed_url="https://voice.example.com/voice/")
    assert ok.status_code == 200
    internal = twilio.post("/voice/", PARAMS, signed_url="http://testserver/voice/")
    assert internal.status_code == 403


@pytest.mark.parametrize("path", ["/voice/", "/voice/card/", "/voice/status/"])
def test_a_host_whose_port_is_out_of_range_has_no_valid_signature(twilio, caplog, path):
    # Django's host check takes any run of digits for a port; urlparse, under the signature
    # check, refuses one past 65535. Twilio requested no such URL: a forgery, not a failure.
    response = twilio.post(path, {**PARAMS, "Digits": "8264"}, HTTP_HOST="localhost:99999")
    assert response.status_code == 403
    assert AuditEvent.objects.get().event == "signature_rejected"
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_the_fallback_refuses_a_port_out_of_range_too(twilio, caplog):
    response = twilio.post("/voice/fallback/", PARAMS, HTTP_HOST="localhost:99999")
    assert response.status_code == 403
    assert "invalid Twilio signature" in caplog.text and "failed" not in caplog.text


@override_settings(SECUREGATHER_PUBLIC_URL="https://voice.example.com")
def test_behind_a_proxy_the_query_string_is_part_of_what_twilio_signed(twilio):
    # A webhook URL configured with a query string is signed with it, as Twilio calls it.
    signed = "https://voice.example.com/voice/?site=7"
    assert twilio.post("/voice/?site=7", PARAMS, signed_url=signed).status_code == 200
    assert twilio.post("/voice/?site=8", PARAMS, signed_url=signed).status_code == 403


@override_settings(TWILIO_ACCOUNT_SID=ACCOUNT_SID)
def test_requests_for_another_twilio_account_are_refused(twilio):
    assert twilio.post("/voice/", PARAMS).status_code == 200
    other = {**PARAMS, "CallSid": "CA" + "ef" * 16, "AccountSid": "AC" + "00" * 16}
    assert twilio.post("/voice/", other).status_code == 403
    assert AuditEvent.objects.filter(event="foreign_account").count() == 1


def test_get_is_not_allowed(twilio):
    assert twilio.client.get("/voice/").status_code == 405


@pytest.mark.parametrize("debug", [False, True])
def test_a_failing_step_answers_twiml_without_the_digits(twilio, plaintext, debug):
    twilio.post("/voice/", PARAMS)
    with (
        override_settings(DEBUG=debug),
        mock.patch(
            "calls.models.CallSession.accept_card",
            autospec=True,
            side_effect=RuntimeError("boom"),
        ),
    ):
        response = twilio.post("/voice/card/", {**PARAMS, "Digits": "8264"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/xml"
    assert b"<Hangup />" in response.content and b"Sorry" in response.content
    assert AuditEvent.objects.filter(event="step_failed").exists()
    assert "RuntimeError" in plaintext.caplog.text
    plaintext.assert_absent("8264")


FORM = "application/x-www-form-urlencoded"
# Django's limits: 1,000 fields, 2.5 MB of them. Twilio sends some twenty.
MANY_FIELDS = {**PARAMS, "Digits": "8264", **{f"x{i}": "1" for i in range(1000)}}


def post_unreadable(twilio, path: str, kind: str):
    if kind == "too many fields":
        return twilio.post(path, MANY_FIELDS)
    if kind == "too large":
        with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=200):
            return twilio.post(path, {**PARAMS, "Digits": "8264", "x": "1" * 300})
    if kind == "too many files":
        files = {f"f{i}": SimpleUploadedFile(f"{i}.txt", b"8264") for i in range(2)}
        with override_settings(DATA_UPLOAD_MAX_NUMBER_FILES=1):
            return twilio.client.post(path, {**PARAMS, **files}, HTTP_X_TWILIO_SIGNATURE="x")
    if kind == "client gone":
        return post_body(twilio, path, **{"wsgi.input": GoneMidBody()})
    if kind == "no length":
        # A Content-Length that is no number: gunicorn refuses it, runserver passes it on, and
        # Django reads it with int() as it reads the body.
        return post_body(twilio, path, CONTENT_LENGTH="8264 bytes")
    if kind == "not utf-8":
        # Django parses such a form as UTF-8 only, and refuses any other charset.
        return post_body(twilio, path, content_type=f"{FORM}; charset=latin-1")
    # A multipart body without its boundary, whose error message would quote the header.
    return post_body(twilio, path, content_type="multipart/form-data; boundary=8264\u00e9")


def post_body(twilio, path: str, content_type: str = FORM, **extra: object):
    """The body "Digits=8264", sent as ``content_type``, under a signature never reached."""
    return twilio.client.post(
        path, "Digits=8264", content_type=content_type, HTTP_X_TWILIO_SIGNATURE="x", **extra
    )


@pytest.mark.parametrize("path", ["/voice/", "/voice/card/", "/voice/status/"])
@pytest.mark.parametrize(
    "kind",
    [
        "too many fields",
        "too large",
        "too many files",
        "broken multipart",
        "client gone",
        "no length",
        "not utf-8",
    ],
)
def test_a_body_that_is_no_form_is_a_bad_request(twilio, caplog, settings, path, kind):
    settings.SECUREGATHER_OFFER_LANGUAGES = path == "/voice/card/"  # its lookup reads the form
    response = post_unreadable(twilio, path, kind)
    assert (response.status_code, response.content) == (400, b"Unreadable request body.")
    event = AuditEvent.objects.get()
    assert (event.event, event.call_sid, event.detail) == (
        "malformed_request",
        "",
        {"path": path, "reason": "body"},
    )
    assert not CallSession.objects.exists()
    assert "8264" not in caplog.text
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
