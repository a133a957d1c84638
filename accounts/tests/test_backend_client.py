import json
import ssl
from decimal import Decimal

import pytest
from django.test import override_settings

from accounts import backend_client
from accounts.backend_client import BackendAnswer, BackendUnavailable, CircuitBreaker, parse
from deploy.proxy import self_signed


def test_a_found_answer_is_read_with_its_balance_and_reference():
    answer = (
        b'{"status": "found", "account": "AC12345678", "balance": "12.55", "account_ref": "r1"}'
    )
    assert parse(answer) == BackendAnswer("found", "AC12345678", Decimal("12.55"), "r1")


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (b'{"status": "not_found"}', BackendAnswer("not_found")),
        (
            b'{"status": "not_found", "account_ref": "acct_1"}',
            BackendAnswer("not_found", account_ref="acct_1"),
        ),
        (b'{"status": "locked"}', BackendAnswer("locked")),
    ],
)
def test_not_found_and_locked_answers_are_read(answer, expected):
    assert parse(answer) == expected


@pytest.mark.parametrize(
    "answer",
    [
        b"",
        b"[]",
        b'{"status": "found", "account": "AC1", "balance": "NaN"}',
        b'{"status": "found", "account": "AC1", "balance": 1.5}',
        b'{"status": "found", "account": "", "balance": "1"}',
        b'{"status": "not_found", "account_ref": "' + b"r" * 65 + b'"}',
        b"\xff\xfe",
    ],
)
def test_anything_else_is_a_bad_answer(answer):
    with pytest.raises(BackendUnavailable, match=r"^bad_answer$"):
        parse(answer)


@override_settings(SECUREGATHER_BACKEND_BREAKER_FAILURES=3, SECUREGATHER_BACKEND_BREAKER_SECONDS=30)
def test_the_breaker_opens_after_failures_in_a_row_and_lets_requests_go_after_its_time():
    now = [100.0]
    breaker = CircuitBreaker(now=lambda: now[0])
    breaker.failed()
    breaker.failed()
    breaker.succeeded()  # a success in between: the count starts again
    breaker.failed()
    breaker.failed()
    assert breaker.allows()
    breaker.failed()
    assert not breaker.allows()
    now[0] += 30
    assert breaker.allows()
    breaker.failed()  # the first request after the open time fails: open again at once
    assert not breaker.allows()


def test_the_request_is_signed_over_timestamp_and_body_and_carries_the_idempotency_key():
    card, pin = "hpke1.x25519.b1." + "A" * 70, "hpke1.x25519.b1." + "B" * 70
    body = backend_client.request_body(card, pin, "+1", "CA1", "7")
    request = json.loads(body)
    assert request["idempotency_key"] == backend_client.idempotency_key("CA1")
    assert backend_client.idempotency_key("CA1") != backend_client.idempotency_key("CA2")
    assert (request["kid"], request["timestamp"]) == ("b1", "7")
    assert backend_client.sign(b"k", "7", body) != backend_client.sign(b"k", "8", body)


def test_the_tls_context_carries_the_client_certificate_and_the_ca_file(tmp_path):
    cert_file, key_file = self_signed(tmp_path)
    with override_settings(
        SECUREGATHER_BACKEND_CLIENT_CERT=str(cert_file),
        SECUREGATHER_BACKEND_CLIENT_KEY=str(key_file),
        SECUREGATHER_BACKEND_CA_FILE=str(cert_file),
    ):
        context = backend_client.ssl_context()
    # The CA file's one certificate is the only one trusted: not the system's.
    assert context.cert_store_stats()["x509"] == 1


def test_a_client_certificate_that_will_not_load_is_an_outage_not_a_crash(tmp_path):
    with (
        override_settings(
            SECUREGATHER_BACKEND_URL="https://127.0.0.1:9/resolve",
            SECUREGATHER_BACKEND_CLIENT_CERT=str(tmp_path / "missing.pem"),
            SECUREGATHER_BACKEND_CLIENT_KEY=str(tmp_path / "missing.key"),
        ),
        pytest.raises(BackendUnavailable, match=r"^FileNotFoundError$"),
    ):
        backend_client.post(b"{}", {})


def test_a_client_key_that_does_not_match_its_certificate_is_refused(tmp_path):
    cert_file, _ = self_signed(tmp_path)
    (other := tmp_path / "other").mkdir()
    _, other_key = self_signed(other)
    with (
        override_settings(
            SECUREGATHER_BACKEND_CLIENT_CERT=str(cert_file),
            SECUREGATHER_BACKEND_CLIENT_KEY=str(other_key),
        ),
        pytest.raises(ssl.SSLError),
    ):
        backend_client.ssl_context()
