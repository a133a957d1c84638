"""POST /api/decrypt-gather, fed ciphertexts made in Node.js exactly as the tutorial's Function."""

from __future__ import annotations

import hashlib
import html
import json
from datetime import timedelta

import pytest
import time_machine
from django.test import Client, RequestFactory
from django.utils import timezone
from django.views.debug import ExceptionReporter

from accounts import lockout
from accounts.models import Lockout
from accounts.resolvers import Locked, ResolverUnavailable
from audit.models import AuditEvent
from conftest import LEGACY_KEY, tutorial_encrypt
from legacy.models import AcceptedCiphertext
from legacy.views import decrypt_gather

URL = "/api/decrypt-gather"


@pytest.fixture
def api(settings, twilio, db):
    """A client posting as the tutorial's Function does (JSON, like axios), responses scanned."""
    settings.SECUREGATHER_LEGACY_KEY = LEGACY_KEY
    settings.SECUREGATHER_API_TOKEN = ""
    client = Client(enforce_csrf_checks=True)

    def post(card: str, pin: str, **extra: str):
        body = json.dumps({"encryptedCardDigits": card, "encryptedPinDigits": pin})
        response = client.post(URL, body, content_type="application/json", **extra)
        twilio.responses.append(response)  # so the plaintext fixture scans it
        return response

    return post


def events() -> list[str]:
    return list(AuditEvent.objects.order_by("id").values_list("event", flat=True))


def test_node_ciphertexts_resolve_the_demo_account(api, demo_account, plaintext):
    card, pin = tutorial_encrypt("1234", "4321")
    response = api(card, pin)
    assert response.status_code == 200
    assert response.json() == {"account": "AC12345678", "balance": "12.55"}
    row = AuditEvent.objects.get(event=AuditEvent.Event.VERIFIED)
    assert (row.channel, row.account_number) == ("api", "AC12345678")
    plaintext.assert_absent("1234", "4321")


def test_other_digits_get_no_data_found(api, demo_account, plaintext):
    card, pin = tutorial_encrypt("1234", "0000")
    response = api(card, pin)
    assert (response.status_code, response.content) == (404, b"No data found")
    assert events() == ["not_found"]
    plaintext.assert_absent("1234", "0000")


def test_replayed_ciphertexts_are_refused_and_audited(api, demo_account):
    card, pin = tutorial_encrypt("1234", "4321")
    assert api(card, pin).status_code == 200
    response = api(card, pin)
    assert (response.status_code, response.content) == (404, b"No data found")
    assert events() == ["verified", "replay_refused"]
    assert AuditEvent.objects.get(event="replay_refused").channel == "api"


def test_one_replayed_ciphertext_is_enough_to_refuse(api, demo_account):
    card, pin = tutorial_encrypt("1234", "4321")
    assert api(card, pin).status_code == 200
    fresh_pin = tutorial_encrypt("4321")[0]
    assert api(card, fresh_pin).status_code == 404
    assert api(card.upper(), fresh_pin).status_code == 404  # hex case makes no new ciphertext
    assert events()[-2:] == ["replay_refused", "replay_refused"]


def test_the_fresh_ciphertext_sent_with_a_replayed_one_is_used_up_too(api, demo_account):
    card, pin = tutorial_encrypt("1234", "4321")
    assert api(card, pin).status_code == 200
    fresh_card, fresh_pin = tutorial_encrypt("1234", "4321")
    assert api(card, fresh_pin).status_code == 404
    # Both were marked used before the replay was refused: the PIN's turn is spent as well.
    assert api(fresh_card, fresh_pin).status_code == 404
    assert events() == ["verified", "replay_refused", "replay_refused"]


def test_a_ciphertext_is_used_up_even_when_the_answer_was_not_found(api, demo_account):
    card, pin = tutorial_encrypt("1234", "0000")
    assert api(card, pin).status_code == 404
    assert api(card, pin).status_code == 404
    assert events() == ["not_found", "replay_refused"]


def test_only_digests_of_ciphertexts_are_stored(api, demo_account):
    card, pin = tutorial_encrypt("1234", "4321")
    api(card, pin)
    digests = list(AcceptedCiphertext.objects.values_list("digest", flat=True))
    assert len(digests) == 2
    assert sorted(digests) == sorted(
        hashlib.sha256(bytes.fromhex(value)).hexdigest() for value in (card, pin)
    )


def test_form_posts_are_accepted_too(settings, demo_account):
    settings.SECUREGATHER_LEGACY_KEY = LEGACY_KEY
    card, pin = tutorial_encrypt("1234", "4321")
    response = Client(enforce_csrf_checks=True).post(
        URL, {"encryptedCardDigits": card, "encryptedPinDigits": pin}
    )
    assert response.json() == {"account": "AC12345678", "balance": "12.55"}


def test_a_form_in_another_charset_gets_the_bare_400_and_its_row(settings, db):
    # Django reads such a form as UTF-8 only: it refuses any other charset (BadRequest).
    settings.SECUREGATHER_LEGACY_KEY = LEGACY_KEY
    response = Client(enforce_csrf_checks=True).post(
        URL,
        "encryptedCardDigits=00&encryptedPinDigits=00",
        content_type="application/x-www-form-urlencoded; charset=latin-1",
    )
    assert (response.status_code, response.content) == (400, b"Bad request")
    assert events() == ["malformed_request"]


@pytest.mark.parametrize(
    "card",
    [
        "not hex at all",
        "abc",  # odd length
        "00" * 27,  # shorter than nonce + tag
        "00" * 200,  # longer than any keypad entry
        "",
    ],
)
def test_unreadable_ciphertexts_get_a_bare_400(api, demo_account, card):
    pin = tutorial_encrypt("4321")[0]
    response = api(card, pin)
    assert (response.status_code, response.content) == (400, b"Bad request")
    assert events() == ["malformed_request"]


def test_a_tampered_tag_gets_the_same_bare_400(api, demo_account):
    card, pin = tutorial_encrypt("1234", "4321")
    tampered = card[:-2] + ("00" if card[-2:] != "00" else "01")
    assert api(tampered, pin).content == b"Bad request"
    assert AcceptedCiphertext.objects.count() == 0  # nothing is used up by a refused request


def test_a_ciphertext_under_another_key_gets_a_bare_400(api, demo_account):
    card, pin = tutorial_encrypt("1234", "4321", key="77" * 32)
    assert api(card, pin).status_code == 400


@pytest.mark.parametrize(
    "body", [b"{not json", b"[1, 2]", b'{"encryptedCardDigits": 1234, "encryptedPinDigits": 1}']
)
def test_a_body_that_is_not_the_tutorials_object_gets_400(settings, db, body):
    settings.SECUREGATHER_LEGACY_KEY = LEGACY_KEY
    response = Client().post(URL, body, content_type="application/json")
    assert (response.status_code, response.content) == (400, b"Bad request")


@pytest.mark.parametrize("digits", ["", "12345", "12a4"])
def test_decrypted_values_that_are_not_4_digits_find_nothing(api, demo_account, digits):
    card, pin = tutorial_encrypt(digits, "4321")
    assert api(card, pin).content == b"No data found"
    assert events() == ["invalid_input"]


def test_without_a_legacy_key_the_api_is_off(settings, db):
    settings.SECUREGATHER_LEGACY_KEY = ""
    card, pin = tutorial_encrypt("1234", "4321")
    response = Client().post(URL, {"encryptedCardDigits": card, "encryptedPinDigits": pin})
    assert response.status_code == 404
    assert AuditEvent.objects.count() == 0


def test_get_is_not_allowed(settings, db):
    settings.SECUREGATHER_LEGACY_KEY = LEGACY_KEY
    assert Client().get(URL).status_code == 405


class TestBearerToken:
    TOKEN = "api-token-for-tests-0123456789abcdef"

    @pytest.fixture(autouse=True)
    def _token(self, api, settings):
        settings.SECUREGATHER_API_TOKEN = self.TOKEN

    @pytest.mark.parametrize(
        "header", [None, "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer "]
    )
    def test_a_missing_or_wrong_token_gets_401_and_an_audit_row(self, api, demo_account, header):
        card, pin = tutorial_encrypt("1234", "4321")
        extra = {} if header is None else {"HTTP_AUTHORIZATION": header}
        response = api(card, pin, **extra)
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Bearer")
        assert events() == ["unauthorized"]
        assert AcceptedCiphertext.objects.count() == 0

    def test_the_right_token_is_let_through(self, api, demo_account):
        card, pin = tutorial_encrypt("1234", "4321")
        response = api(card, pin, HTTP_AUTHORIZATION=f"Bearer {self.TOKEN}")
        assert response.json()["account"] == "AC12345678"


def test_a_locked_caller_or_account_finds_nothing(api, demo_account, monkeypatch):
    def locked(card_last4: str, pin: str, caller: str, **context: str):
        raise Locked

    monkeypatch.setattr("legacy.views.resolve", locked)
    card, pin = tutorial_encrypt("1234", "4321")
    assert (api(card, pin).status_code, events()) == (404, ["locked_out"])


def test_a_lock_taken_and_expired_through_the_api_is_on_the_apis_rows(api, demo_account, plaintext):
    ciphertexts = tutorial_encrypt(*["1234", "0000"] * 5, "1234", "4321")
    pairs = list(zip(ciphertexts[::2], ciphertexts[1::2], strict=True))
    for card, pin in pairs[:5]:
        assert api(card, pin).status_code == 404
    lock = AuditEvent.objects.get(event="locked_out", detail__scope="card")
    assert (lock.actor, lock.channel, lock.account_number, lock.detail["action"]) == (
        "api",
        "api",
        "AC12345678",
        "locked",
    )
    with time_machine.travel(timezone.now() + timedelta(minutes=31)):
        assert api(*pairs[5]).status_code == 200
    unlocked = AuditEvent.objects.get(event="unlocked", detail__scope="card")
    assert (unlocked.actor, unlocked.channel, unlocked.detail["reason"]) == (
        "system",
        "api",
        "expired",
    )
    plaintext.assert_absent("0000", "4321")


def test_the_api_counts_each_guess_on_its_tokens_counter_and_the_card(api, settings, demo_account):
    settings.SECUREGATHER_API_TOKEN = "t0ken-for-the-function"
    bearer = {"HTTP_AUTHORIZATION": "Bearer t0ken-for-the-function"}
    ciphertexts = tutorial_encrypt(*["1234", "0000"] * 5, "1234", "4321")
    pairs = list(zip(ciphertexts[::2], ciphertexts[1::2], strict=True))
    for card, pin in pairs[:5]:
        assert api(card, pin, **bearer).status_code == 404
    counters = dict(Lockout.objects.values_list("scope", "key"))
    # One caller per token, named by a digest of it: never the token itself.
    assert counters["caller"] == lockout.api_caller("t0ken-for-the-function")
    assert "t0ken" not in counters["caller"]
    assert counters["card"] == lockout.card_key("1234")
    assert api(*pairs[5], **bearer).status_code == 404  # the right PIN, refused by the lock
    locks = AuditEvent.objects.filter(event="locked_out")
    (row,) = [lock for lock in locks if "action" not in lock.detail]
    assert (row.account_number, row.channel, row.detail["scope"]) == ("AC12345678", "api", "card")


def test_an_unavailable_resolver_gets_503_without_detail(api, demo_account, monkeypatch):
    def unavailable(card_last4: str, pin: str, caller: str, **context: str):
        raise ResolverUnavailable("backend timed out after 5 s")

    monkeypatch.setattr("legacy.views.resolve", unavailable)
    card, pin = tutorial_encrypt("1234", "4321")
    response = api(card, pin)
    assert (response.status_code, response.content) == (503, b"Service unavailable")
    assert events() == ["resolver_unavailable"]


def test_the_resolver_is_asked_without_a_caller_number(api, demo_account, monkeypatch):
    seen = []

    def spy(card_last4: str, pin: str, caller: str, **context: str):
        seen.append(caller)

    monkeypatch.setattr("legacy.views.resolve", spy)
    card, pin = tutorial_encrypt("1234", "4321")
    api(card, pin)
    assert seen == [""]


def test_an_unexpected_failure_reports_no_digit_ciphertext_or_key(
    settings, demo_account, monkeypatch
):
    """Django's error report (mail to ADMINS, the DEBUG page) shows locals and POST: not these."""
    settings.SECUREGATHER_LEGACY_KEY = LEGACY_KEY

    def broken(card_last4: str, pin: str, caller: str, **context: str):
        raise RuntimeError("resolver bug")

    monkeypatch.setattr("legacy.views.resolve", broken)
    for form in (True, False):
        card, pin = tutorial_encrypt("1234", "4321")
        fields = {"encryptedCardDigits": card, "encryptedPinDigits": pin}
        factory = RequestFactory()
        request = (
            factory.post(URL, fields)
            if form
            else factory.post(URL, json.dumps(fields), content_type="application/json")
        )
        with pytest.raises(RuntimeError) as failure:
            decrypt_gather(request)
        # From the view down: this test's own frame holds the ciphertexts, of course.
        report = ExceptionReporter(
            request, failure.type, failure.value, failure.tb.tb_next
        ).get_traceback_html()
        assert "resolver bug" in report and "card_last4" in report  # locals are shown...
        key_repr = html.escape(repr(bytes.fromhex(LEGACY_KEY)))
        for secret in (card, pin, key_repr, "&#x27;1234&#x27;", "&#x27;4321&#x27;"):
            assert secret not in report  # ...but not these


def test_an_unexpected_failure_leaves_its_audit_row(settings, demo_account, monkeypatch):
    # The ciphertexts are taken by then: the row says what became of them.
    settings.SECUREGATHER_LEGACY_KEY = LEGACY_KEY

    def broken(card_last4: str, pin: str, caller: str, **context: str):
        raise RuntimeError("resolver bug")

    monkeypatch.setattr("legacy.views.resolve", broken)
    card, pin = tutorial_encrypt("1234", "4321")
    body = json.dumps({"encryptedCardDigits": card, "encryptedPinDigits": pin})
    client = Client(raise_request_exception=False)
    assert client.post(URL, body, content_type="application/json").status_code == 500
    row = AuditEvent.objects.get()
    assert (row.event, row.channel, row.detail) == (
        "step_failed",
        "api",
        {"path": URL, "error": "RuntimeError"},
    )


def test_with_the_http_resolver_the_api_answers_503_and_digests_nothing(
    api, demo_account, settings, backend_keys
):
    # Its plaintexts have no backend to go to, and a card counter keyed by their digest is
    # what the HTTP resolver's mode must not keep.
    settings.SECUREGATHER_RESOLVER = "accounts.resolvers.HttpResolver"
    settings.SECUREGATHER_BACKEND_PUBLIC_KEYS = backend_keys.public_entry
    card, pin = tutorial_encrypt("1234", "4321")
    response = api(card, pin)
    assert (response.status_code, response.content) == (503, b"Service unavailable")
    assert events() == ["resolver_unavailable"]
    assert not Lockout.objects.exists()
