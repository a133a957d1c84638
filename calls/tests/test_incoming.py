import pytest

from audit.models import AuditEvent
from calls.models import CallSession
from conftest import CALL_SID, CALLER, gather, spoken


@pytest.mark.django_db
def test_incoming_call_opens_a_session_and_asks_for_the_card(call):
    response = call.start()
    g = gather(response)
    assert g is not None
    assert g.attrib == {
        "input": "dtmf",
        "numDigits": "4",
        "timeout": "10",
        "method": "POST",
        "action": "/voice/card/",
        "actionOnEmptyResult": "true",
    }
    assert "last 4 digits of your payment card" in spoken(response)
    assert g.find("Say").get("language") == "en-US"
    session = CallSession.objects.get(call_sid=CALL_SID)
    assert (session.state, session.caller) == ("awaiting_card", CALLER)
    event = AuditEvent.objects.get()
    assert (event.event, event.caller) == ("call_started", "*" * 10 + "06")


@pytest.mark.django_db
def test_redelivered_incoming_webhook_does_not_reset_the_call(call):
    call.start()
    call.card("8264")
    response = call.start()
    assert gather(response).get("action") == "/voice/pin/"
    assert CallSession.objects.get().state == "awaiting_pin"


@pytest.mark.django_db
@pytest.mark.parametrize("sid", ["", "CA123", "XX" + "ab" * 16, "CA" + "zz" * 16, "CA" + "ab" * 40])
def test_malformed_call_sid_is_a_bad_request(call, sid):
    call.call_sid = sid
    assert call.start().status_code == 400
    assert not CallSession.objects.exists()
    # Signed, so an audit row; without the CallSid, which is not Twilio's and could be anything.
    row = AuditEvent.objects.get()
    assert (row.event, row.outcome, row.call_sid) == ("malformed_request", "failure", "")
    assert row.detail == {"path": "/voice/", "reason": "call_sid"}


@pytest.mark.django_db
def test_the_webhook_needs_no_csrf_token(call):
    # The client enforces CSRF like a browser would; Twilio never sends a token.
    assert call.twilio.client.handler.enforce_csrf_checks
    assert call.start().status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    "caller",
    [
        "+1500555\x000006",  # PostgreSQL refuses a NUL in text: the call could not start
        "\u202e+15005550006",  # right-to-left override: the number would print reversed
        "+\u0661\u0665\u0660\u0660\u0665\u0665\u0665\u0660\u0660\u0660\u0666",  # Arabic-Indic
    ],
)
def test_a_caller_number_that_is_not_printable_ascii_is_not_kept(call, caller):
    call.caller = caller
    response = call.start()
    assert gather(response).get("action") == "/voice/card/"
    assert CallSession.objects.get().caller == ""
    assert AuditEvent.objects.get().caller == ""


@pytest.mark.parametrize(
    ("verstat", "kept"),
    [
        ("TN-Validation-Passed-A", "TN-Validation-Passed-A"),
        ("No-TN-Validation", "No-TN-Validation"),
        ("", ""),
        ("TN-Validation-Passed-A<script>", ""),
        ("A" * 41, ""),
    ],
)
def test_the_calls_shaken_stir_verification_is_kept_from_its_first_webhook(call, verstat, kept):
    call.params = {"StirVerstat": verstat}
    call.start()
    # A later webhook's value does not change the call's.
    call.params = {"StirVerstat": "TN-Validation-Passed-A"}
    call.card("1234")
    assert CallSession.objects.get().attestation == kept
