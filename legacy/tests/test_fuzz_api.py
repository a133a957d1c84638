"""Whatever reaches POST /api/decrypt-gather gets one of its fixed answers: never a 500, never
the input echoed back. The "ci" hypothesis profile runs 2,000 examples."""

import json

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import LEGACY_KEY, GoneMidBody, tutorial_encrypt

FIXED = {b"No data found", b"Bad request", b"Unauthorized", b"Service unavailable", b""}
FIELDS = ["encryptedCardDigits", "encryptedPinDigits"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=60),
    st.text(alphabet="0123456789abcdefABCDEF", min_size=0, max_size=120),
    st.builds(lambda c, n: c * n, st.characters(codec="utf-8"), st.integers(1_000, 20_000)),
)
documents = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from([*FIELDS, "x"]) | st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
bodies = st.one_of(
    documents.map(json.dumps),
    st.integers(1, 50_000).map(lambda depth: "[" * depth),  # deeper than the parser goes
    st.binary(max_size=300).map(lambda raw: raw.decode("latin-1")),
    st.text(max_size=300),
)


@pytest.fixture
def api_client(settings, db):
    settings.SECUREGATHER_LEGACY_KEY = LEGACY_KEY
    return Client(enforce_csrf_checks=True)


@settings(
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ]
)
@given(
    body=bodies,
    content_type=st.sampled_from(
        ["application/json"] * 6 + ["application/x-www-form-urlencoded", "text/plain", ""]
    ),
    method=st.sampled_from(["POST"] * 10 + ["GET", "PUT", "DELETE"]),
)
def test_any_body_gets_a_fixed_answer_and_no_500(api_client, body, content_type, method):
    response = api_client.generic(method, "/api/decrypt-gather", body, content_type=content_type)
    assert response.status_code in {400, 404, 405}, (response.status_code, response.content)
    assert response.content in FIXED


def test_a_nested_body_is_a_bad_request(api_client):
    response = api_client.post(
        "/api/decrypt-gather", "[" * 100_000, content_type="application/json"
    )
    assert (response.status_code, response.content) == (400, b"Bad request")


def test_real_ciphertexts_among_junk_fields_still_resolve(api_client, demo_account):
    card, pin = tutorial_encrypt("1234", "4321")
    body = {"encryptedCardDigits": card, "encryptedPinDigits": pin, "junk": "[" * 1000}
    response = api_client.post("/api/decrypt-gather", body, content_type="application/json")
    assert response.json() == {"account": "AC12345678", "balance": "12.55"}


def test_a_form_past_djangos_limits_is_a_bad_request(api_client):
    response = api_client.post(
        "/api/decrypt-gather", "&" * 1000, content_type="application/x-www-form-urlencoded"
    )
    assert (response.status_code, response.content) == (400, b"Bad request")


def test_a_body_past_djangos_size_limit_is_a_bad_request(api_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 200
    body = {"encryptedCardDigits": "a" * 300, "encryptedPinDigits": "b"}
    response = api_client.post("/api/decrypt-gather", body, content_type="application/json")
    assert (response.status_code, response.content) == (400, b"Bad request")


def test_a_client_gone_mid_body_is_a_bad_request(api_client):
    response = api_client.post(
        "/api/decrypt-gather",
        '{"encryptedCardDigits": "ab"}',
        content_type="application/json",
        **{"wsgi.input": GoneMidBody()},
    )
    assert (response.status_code, response.content) == (400, b"Bad request")


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "application/json"])
def test_a_content_length_that_is_no_number_is_a_bad_request(api_client, content_type):
    response = api_client.generic(
        "POST", "/api/decrypt-gather", "{}", content_type=content_type, CONTENT_LENGTH="2 bytes"
    )
    assert (response.status_code, response.content) == (400, b"Bad request")
