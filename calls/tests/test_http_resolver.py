"""Calls resolved by the user's backend over real HTTP: the example backend (examples/backend/)
in a subprocess, or a stand-in server that is slow or talks nonsense."""

import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management import call_command
from django.test import override_settings

from accounts import backend_client
from accounts.models import Account, Lockout
from audit.models import AuditEvent
from calls.models import CallSession
from conftest import BACKEND_SECRET, FakeCall, post_to, signed_request, spoken
from keys.keyring import SealError

pytestmark = pytest.mark.django_db

FOUND = "Thank you. Your account number is AC12345678 and your balance is 12.55"
NOT_FOUND = "We were not able to locate you in our system. Goodbye."
APOLOGY = "Sorry, we cannot check your details right now. Please try later. Goodbye."
LOCKED = "Sorry, there have been too many attempts. Please try again later. Goodbye."
DEMO_REF = "ref:acct_5f0c9e2a41d7"


@pytest.fixture
def backend(example_backend):
    with override_settings(**example_backend.settings()):
        yield example_backend


def play(call, card, pin):
    call.start()
    call.card(card)
    return spoken(call.pin(pin))


def another_call(twilio, n, caller="+15005550006"):
    return FakeCall(twilio, call_sid=f"CA{n:032x}", caller=caller)


def unavailable_reason():
    return AuditEvent.objects.get(event="resolver_unavailable").detail["reason"]


def test_the_demo_call_is_verified_by_the_backend_alone(call, backend, plaintext):
    assert play(call, "1234", "4321") == FOUND
    session = CallSession.objects.get()
    assert (session.outcome, session.account_number) == ("verified", "AC12345678")
    # The demo account lives in the backend, not in the service's table.
    assert not Account.objects.exists()
    keys = AuditEvent.objects.filter(event__in=["card_entered", "pin_entered"])
    assert set(keys.values_list("key_id", flat=True)) == {"backend:b1"}
    plaintext.assert_absent("1234", "4321")


def test_the_session_holds_only_a_ciphertext_the_keyring_cannot_open(call, backend, plaintext):
    call.start()
    call.card("1234")
    session = CallSession.objects.get()
    assert session.card.token.startswith("hpke1.x25519.b1.")
    with pytest.raises(SealError):
        session.unseal("card")
    plaintext.assert_absent("1234")


def test_a_wrong_pin_is_not_found_and_counted_on_the_caller_and_the_backends_reference(
    call, backend, plaintext
):
    assert play(call, "1234", "0000") == NOT_FOUND
    counted = {(row.scope, row.key): len(row.failures) for row in Lockout.objects.all()}
    assert counted == {("caller", call.caller): 1, ("card", DEMO_REF): 1}
    assert CallSession.objects.get().outcome == "not_found"
    plaintext.assert_absent("1234", "0000")


def test_an_unknown_card_is_not_found_and_counted_on_the_caller_alone(call, backend, plaintext):
    assert play(call, "9999", "4321") == NOT_FOUND
    counted = {(row.scope, row.key): len(row.failures) for row in Lockout.objects.all()}
    assert counted == {("caller", call.caller): 1}
    plaintext.assert_absent("9999", "4321")


def test_wrong_pins_from_many_callers_lock_the_account_by_its_reference(twilio, backend):
    for n in range(5):
        caller = f"+1500555{n:04d}"
        assert play(another_call(twilio, n, caller), "1234", "0000") == NOT_FOUND
    # The right PIN, from a caller with no failure: the backend's answer is withheld.
    assert play(another_call(twilio, 99, "+15005559999"), "1234", "4321") == LOCKED
    assert CallSession.objects.get(call_sid=f"CA{99:032x}").outcome == "locked_out"
    # Staff lift it by the counter's key, as the audit row and the lockout list show it.
    call_command("unlock", DEMO_REF, stdout=io.StringIO())
    assert play(another_call(twilio, 100, "+15005559998"), "1234", "4321") == FOUND


def test_calls_without_a_number_count_on_the_one_withheld_counter(twilio, backend):
    play(another_call(twilio, 1, "anonymous"), "9999", "0000")
    play(another_call(twilio, 2, "client:alice"), "9999", "0000")
    counted = {(row.scope, row.key): len(row.failures) for row in Lockout.objects.all()}
    assert counted == {("caller", "withheld"): 2}


def test_a_locked_caller_is_refused_before_any_request(twilio, backend):
    for n in range(5):
        play(another_call(twilio, n), "9999", "0000")
    backend.process.terminate()
    backend.process.wait(timeout=10)
    # Refused at once: with the backend gone, a request would have been the apology.
    assert spoken(another_call(twilio, 9).start()) == LOCKED


def test_a_backend_that_is_down_gives_the_apology(call, backend, caplog):
    backend.process.terminate()
    backend.process.wait(timeout=10)
    assert play(call, "1234", "4321") == APOLOGY
    assert CallSession.objects.get().outcome == "resolver_unavailable"
    assert unavailable_reason() == "unreachable"
    assert "backend resolver unavailable: unreachable" in caplog.text
    assert not Lockout.objects.exclude(failures=[]).exists()


class StandIn(BaseHTTPRequestHandler):
    """A backend that answers ``self.server.answer`` after ``self.server.delay`` seconds, a byte
    every ``self.server.drip`` seconds when that is set, or redirects to ``self.server.location``
    when that is set."""

    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.server.requests += 1
        self.rfile.read(int(self.headers["Content-Length"]))
        time.sleep(self.server.delay)
        body = self.server.answer
        if self.server.location:
            self.send_response(302)
            self.send_header("Location", self.server.location)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        for byte in body if self.server.drip else [body]:
            time.sleep(self.server.drip)
            self.wfile.write(bytes([byte]) if self.server.drip else byte)
            self.wfile.flush()

    def do_GET(self):
        # Where a followed redirect would land: an answer no one signed, over plain http.
        self.server.requests += 1
        body = b'{"status": "found", "account": "AC99999999", "balance": "999.00"}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def stand_in(backend):
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    server.answer, server.delay, server.requests = b"{}", 0.0, 0
    server.drip, server.location = 0.0, ""
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/resolve"
    with override_settings(SECUREGATHER_BACKEND_URL=url, SECUREGATHER_BACKEND_TIMEOUT=0.3):
        yield server
    server.shutdown()


def test_a_backend_slower_than_the_timeout_gives_the_apology(call, stand_in):
    stand_in.delay = 1.0
    started = time.monotonic()
    assert play(call, "1234", "4321") == APOLOGY
    assert time.monotonic() - started < 1.0
    assert unavailable_reason() == "timeout"


def test_a_backend_dripping_its_answer_is_cut_off_at_the_timeout(call, stand_in):
    # Every byte comes within the socket's timeout (0.3 s), the whole answer would take 6 s.
    stand_in.answer = b'{"status": "not_found", "padding": "' + b"x" * 30 + b'"}'
    stand_in.drip = 0.1
    started = time.monotonic()
    assert play(call, "1234", "4321") == APOLOGY
    assert time.monotonic() - started < 1.0
    assert unavailable_reason() == "timeout"


def test_a_redirect_is_not_followed(call, stand_in):
    stand_in.location = f"http://127.0.0.1:{stand_in.server_address[1]}/elsewhere"
    assert play(call, "1234", "4321") == APOLOGY
    assert unavailable_reason() == "http_302"
    assert stand_in.requests == 1  # the POST; the GET it points to was never made
    assert CallSession.objects.get().account_number == ""


@pytest.mark.parametrize(
    "answer",
    [
        b"<html>oops</html>",
        b'{"status": "maybe"}',
        b'{"status": "found", "account": "AC12345678"}',
        b'{"status": "found", "account": "AC1 <say>", "balance": "1"}',
        b'{"status": "not_found", "account_ref": "has spaces"}',
    ],
)
def test_a_backend_answering_nonsense_gives_the_apology(call, stand_in, answer, plaintext):
    stand_in.answer = answer
    assert play(call, "1234", "4321") == APOLOGY
    assert unavailable_reason() == "bad_answer"
    plaintext.assert_absent("1234", "4321")


@override_settings(SECUREGATHER_BACKEND_BREAKER_FAILURES=2, SECUREGATHER_BACKEND_BREAKER_SECONDS=60)
def test_repeated_failures_open_the_circuit_and_calls_are_answered_at_once(twilio, stand_in):
    stand_in.answer = b"nonsense"
    for n in range(2):
        play(another_call(twilio, n, f"+1500555000{n}"), "1234", "4321")
    assert stand_in.requests == 2
    assert play(another_call(twilio, 3, "+15005550003"), "1234", "4321") == APOLOGY
    assert stand_in.requests == 2
    rows = AuditEvent.objects.filter(event="resolver_unavailable").order_by("id")
    assert [row.detail["reason"] for row in rows] == ["bad_answer", "bad_answer", "circuit_open"]


def test_the_example_backend_refuses_a_tampered_request(backend):
    body, stamp, signature = signed_request("CA" + "1" * 32)
    tampered = body.replace(b"+15005550006", b"+15005550007")
    assert post_to(backend, tampered, stamp, signature) == (401, {"error": "bad signature"})


def test_the_example_backend_refuses_a_stale_request(backend):
    body, stamp, signature = signed_request("CA" + "1" * 32, time.time() - 301)
    assert post_to(backend, body, stamp, signature)[0] == 401


def test_the_example_backend_replays_its_first_answer_and_refuses_reused_ciphertexts(backend):
    body, stamp, signature = signed_request("CA" + "1" * 32)
    status, answer = post_to(backend, body, stamp, signature)
    assert (status, answer["status"], answer["account"]) == (200, "found", "AC12345678")
    assert post_to(backend, body, stamp, signature) == (200, {**answer, "replayed": True})
    # The same ciphertexts in a new request, freshly signed: under another idempotency key,
    # which is not the call's; under the call's, with the ciphertexts spelled otherwise.
    request = json.loads(body)
    request["idempotency_key"] = "another"
    again = json.dumps(request).encode()
    signature = backend_client.sign(BACKEND_SECRET.encode(), stamp, again)
    refused = (400, {"error": "idempotency key is not the call's"})
    assert post_to(backend, again, stamp, signature) == refused
    request = json.loads(body)
    request["caller"] = "+15005550007"
    again = json.dumps(request).encode()
    signature = backend_client.sign(BACKEND_SECRET.encode(), stamp, again)
    refused = (409, {"error": "idempotency key reused for another request"})
    assert post_to(backend, again, stamp, signature) == refused


def test_the_backends_own_lock_is_told_to_the_caller_and_counts_nothing(call, stand_in):
    stand_in.answer = b'{"status": "locked"}'
    assert play(call, "1234", "4321") == LOCKED
    row = AuditEvent.objects.get(event="locked_out")
    assert row.detail["scope"] == "backend"
    assert not Lockout.objects.exclude(failures=[]).exists()
