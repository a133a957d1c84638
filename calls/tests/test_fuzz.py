"""Whatever reaches a Twilio-facing route, signed or not, gets TwiML or a 4xx: never a 500,
never the input echoed back. The "ci" hypothesis profile runs 2,000 examples."""

import json
from decimal import Decimal
from html import escape
from urllib.parse import urlencode

import pytest
from defusedxml import ElementTree as ET
from django.test import Client
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from django.utils import translation
from django.utils.datastructures import MultiValueDict
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from accounts.resolvers import Resolution
from calls import languages
from calls import twiml as say
from calls.webhooks import apology
from conftest import ACCOUNT_SID, CALL_SID

ROUTES = [
    "/voice/",
    "/voice/language/",
    "/voice/card/",
    "/voice/pin/",
    "/voice/status/",
    "/voice/fallback/",
]
TWILIO_NAMES = ["CallSid", "AccountSid", "From", "To", "Digits", "CallStatus", "ErrorCode"]
# A few calls, so that examples meet sessions in every state.
CALL_SIDS = [CALL_SID, "CA" + "01" * 16, "CA" + "02" * 16]
PLAUSIBLE = [
    *CALL_SIDS,
    ACCOUNT_SID,
    *("1", "2", "1234", "4321", "0000", ""),
    *("+15005550006", "completed"),
]
FORM = "application/x-www-form-urlencoded"


def everything_the_service_says() -> str:
    """Every answer in every language: a value found in these proves no echo either way."""
    return "\n".join(said_in(language) for language in languages.SAY_LANGUAGES)


def said_in(language: str) -> str:
    with translation.override(languages.django_language(language)):
        return answers()


def answers() -> str:
    spoken = [
        say.offer_languages(),
        say.ask_card(),
        say.ask_card(retry=True),
        say.ask_pin(),
        say.ask_pin(retry=True),
        say.found(Resolution("AC12345678", Decimal("12.55"))),
        say.not_found(),
        say.retries_exhausted(),
        say.resolver_unavailable(),
        say.call_finished(),
        say.locked(),
        say.session_expired(),
        apology(),
    ]
    refusals = [
        "Missing or malformed CallSid.",
        "Invalid Twilio signature.",
        "Requests for this Twilio account are not accepted.",
    ]
    return "\n".join(map(str, spoken)) + "\n".join(refusals)


values = st.one_of(
    st.sampled_from(PLAUSIBLE),
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=200),
    # Huge: one character many times, or a long random run.
    st.builds(lambda c, n: c * n, st.characters(codec="utf-8"), st.integers(1_000, 50_000)),
    st.text(min_size=500, max_size=3_000),
)
names = st.one_of(st.sampled_from(TWILIO_NAMES), st.text(min_size=1, max_size=30))
# Each name with one value or several: repeated parameters, as a form may carry them.
parameters = st.dictionaries(names, st.lists(values, min_size=1, max_size=4), max_size=12)


@pytest.fixture
def said(db) -> str:
    return everything_the_service_says()


def body_for(content_type: str, params: MultiValueDict) -> tuple[bytes | str, str]:
    pairs = [(key, value) for key, items in params.lists() for value in items]
    if content_type == "form":
        return urlencode(pairs), FORM
    if content_type == "multipart":
        return encode_multipart(BOUNDARY, params), MULTIPART_CONTENT
    if content_type == "json":
        return json.dumps({"CallSid": CALL_SID, **params.dict()}), "application/json"
    return urlencode(pairs), content_type


def assert_no_echo(text: str, params: MultiValueDict, said: str, *headers: str) -> None:
    for key, items in [*params.lists(), ("", list(headers))]:
        for value in (key, *items):
            value = value.strip()
            # Short values and words the service says anyway prove nothing either way.
            if len(value) < 6 or value in said or escape(value) in said:
                continue
            assert value not in text and escape(value) not in text, value


@settings(
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
@given(
    route=st.sampled_from(ROUTES),
    method=st.sampled_from(["POST"] * 20 + ["GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]),
    content_type=st.sampled_from(["form"] * 10 + ["multipart", "json", "text/plain", ""]),
    raw=parameters,
    with_call=st.sampled_from([None, *CALL_SIDS]),
    signature=st.sampled_from(["valid"] * 6 + ["wrong", "missing"]),
    token=st.one_of(st.none(), st.sampled_from(["t1", "t2"]), st.text(max_size=200)),
)
def test_any_request_gets_twiml_or_a_4xx_and_no_echo(
    demo_account, said, route, method, content_type, raw, with_call, signature, token
):
    params = MultiValueDict(raw)
    if with_call:
        params.setlist("CallSid", [with_call])
    body, mime = body_for(content_type, params)
    # What Django will parse as POST, and so what a valid signature must cover.
    seen = params if method == "POST" and mime in (FORM, MULTIPART_CONTENT) else MultiValueDict()
    url = f"http://testserver{route}"
    headers = {}
    if signature == "valid":
        validator = RequestValidator("test-auth-token-0000000000000000")
        headers["HTTP_X_TWILIO_SIGNATURE"] = validator.compute_signature(url, seen)
    elif signature == "wrong":
        headers["HTTP_X_TWILIO_SIGNATURE"] = "c2lnbmF0dXJl"
    if token is not None:
        headers["HTTP_I_TWILIO_IDEMPOTENCY_TOKEN"] = token.encode().decode("latin-1")
    client = Client(enforce_csrf_checks=True)
    response = client.generic(method, route, body, content_type=mime, **headers)

    event(f"{route} answered {response.status_code}")  # --hypothesis-show-statistics
    assert response.status_code == 200 or 400 <= response.status_code < 500, response.content
    text = response.content.decode()
    if response.status_code == 200 and method != "HEAD":
        assert response["Content-Type"] == "text/xml"
        assert ET.fromstring(response.content).tag == "Response"
    assert_no_echo(text, params, said, *([token] if token else []))
