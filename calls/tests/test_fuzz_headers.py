"""Whatever headers come with a webhook (a Host with any port, a Content-Length that is no number,
any peer address, signature and idempotency headers of any text) get TwiML or a 4xx: never a 500,
never the apology of a failed step, and the audit chain verifies after each.

test_fuzz.py varies the parameters; these are what the server and the client put around them.
"""

from urllib.parse import urlencode

import pytest
from django.test import Client, override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from audit import chain as auditchain
from audit.models import AuditEvent
from conftest import ACCOUNT_SID, CALL_SID

ROUTES = [
    "/voice/",
    "/voice/language/",
    "/voice/card/",
    "/voice/pin/",
    "/voice/status/",
    "/api/decrypt-gather",
]
FORM = "application/x-www-form-urlencoded"
# Header values reach Django as latin-1 text.
latin1 = st.text(alphabet=st.characters(max_codepoint=255), max_size=30)
ports = st.one_of(
    st.none(), st.integers(0, 10**6).map(str), st.sampled_from(["0", "00080", "65535", "65536"])
)
# A server's socket names a link-local peer with its zone; anything else a broken proxy may set.
peers = st.one_of(
    st.sampled_from(["fe80::1%eth0", "fe80::1%25", "::ffff:10.0.0.1", "2001:DB8::1", "", "::1"]),
    latin1,
)
# A length that is a number must be the body's, which the test client enforces.
lengths = st.one_of(st.none(), latin1.filter(lambda text: not text.strip().isdecimal()))


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    route=st.sampled_from(ROUTES),
    host=st.sampled_from(["testserver", "localhost", "127.0.0.1"]),
    port=ports,
    length=lengths,
    peer=peers,
    signature=st.one_of(st.just("valid"), st.none(), latin1),
    token=st.one_of(st.none(), latin1),
    user_agent=st.one_of(st.none(), latin1),
    digits=st.sampled_from(["1234", "4321", "", "١٢٣٤"]),
    offer_languages=st.booleans(),
)
def test_any_headers_get_twiml_or_a_4xx_and_the_chain_verifies(
    db,
    route,
    host,
    port,
    length,
    peer,
    signature,
    token,
    user_agent,
    digits,
    offer_languages,
):
    params = {"CallSid": CALL_SID, "AccountSid": ACCOUNT_SID, "From": "+1500555", "Digits": digits}
    host += f":{port}" if port is not None else ""
    headers = {"HTTP_HOST": host, "REMOTE_ADDR": peer}
    if signature == "valid":
        validator = RequestValidator("test-auth-token-0000000000000000")
        headers["HTTP_X_TWILIO_SIGNATURE"] = validator.compute_signature(
            f"http://{host}{route}", params
        )
    elif signature is not None:
        headers["HTTP_X_TWILIO_SIGNATURE"] = signature
    for name, value in [
        ("CONTENT_LENGTH", length),
        ("HTTP_I_TWILIO_IDEMPOTENCY_TOKEN", token),
        ("HTTP_USER_AGENT", user_agent),
    ]:
        if value is not None:
            headers[name] = value
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    # A context per example: pytest-django's settings fixture would stack one on each.
    with override_settings(
        SECUREGATHER_OFFER_LANGUAGES=offer_languages, SECUREGATHER_LEGACY_KEY="ab" * 32
    ):
        response = client.generic("POST", route, urlencode(params), content_type=FORM, **headers)

    assert response.status_code < 500, headers
    assert b"Sorry" not in response.content, headers  # a failure's apology: none happened
    assert auditchain.verify(AuditEvent.objects.order_by("id")).intact


@pytest.mark.parametrize("peer", ["fe80::1%eth0", "::ffff:10.0.0.1"])
def test_a_whole_call_from_any_peer_address_verifies(call, demo_account, peer):
    call.twilio.client.defaults["REMOTE_ADDR"] = peer
    call.start()
    call.card("1234")
    assert b"AC12345678" in call.pin("4321").content
    assert auditchain.verify(AuditEvent.objects.order_by("id")).intact
