"""The Node.js example backend (examples/backend-node/) over real HTTP: it opens what SecureGather
sealed with each suite and serves the demo call, and it answers every refused request exactly as
the Python one (examples/backend/) does."""

import json
import time
import uuid

import pytest
from django.test import override_settings

from accounts import backend_client
from calls.models import CallSession
from conftest import (
    BACKEND_SECRET,
    FakeCall,
    make_backend_keys,
    post_to,
    running_backend,
    signed_request,
    spoken,
)
from keys import hpke

pytestmark = pytest.mark.django_db

FOUND = "Thank you. Your account number is AC12345678 and your balance is 12.55"
NOT_FOUND = "We were not able to locate you in our system. Goodbye."
KEMS = [("X25519", "x1"), ("MLKEM768_X25519", "h1")]


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    directory = tmp_path_factory.mktemp("node-keys")
    return {kem: make_backend_keys(directory, kid, kem) for kem, kid in KEMS}


@pytest.fixture(scope="module")
def node_backend(keys):
    with running_backend(*keys.values(), node=True) as backend:
        yield backend


@pytest.fixture(scope="module")
def python_backend(keys):
    with running_backend(*keys.values()) as backend:
        yield backend


@pytest.fixture
def call(twilio, db):
    # One backend serves the module: each call has a CallSid of its own, as real calls do, so
    # that the backend's idempotency keys, derived from it, never meet across tests.
    return FakeCall(twilio, call_sid=f"CA{uuid.uuid4().hex}")


@pytest.mark.parametrize(("pin", "heard"), [("4321", FOUND), ("9999", NOT_FOUND)])
@pytest.mark.parametrize(("kem", "kid"), KEMS)
def test_the_demo_call_is_resolved_by_the_node_backend(
    call, node_backend, plaintext, kem, kid, pin, heard
):
    with override_settings(**node_backend.settings(kem)):
        call.start()
        call.card("1234")
        assert CallSession.objects.get(call_sid=call.call_sid).card.backend_kid == kid
        assert spoken(call.pin(pin)) == heard
    plaintext.assert_absent("1234", pin)


def key_of(keys, kem):
    return hpke.parse_public_keys(keys[kem].public_entry)[0]


def resigned(request: dict, stamp: str) -> tuple[bytes, str, str]:
    body = json.dumps(request).encode()
    return body, stamp, backend_client.sign(BACKEND_SECRET.encode(), stamp, body)


def moved_to_another_call(request: dict) -> dict:
    """The request as another call's: its CallSid and the idempotency key derived from it."""
    call_sid = f"CA{uuid.uuid4().hex}"
    return {
        **request,
        "call_sid": call_sid,
        "idempotency_key": backend_client.idempotency_key(call_sid),
    }


def refused_requests(keys, kem):
    """Sequences of requests, each with the answer its last one must get: every refusal the
    receivers make, in the order they check, and the replays they remember."""
    key = key_of(keys, kem)

    def fresh(**changes):
        body, stamp, signature = signed_request(f"CA{uuid.uuid4().hex}", key=key, **changes)
        return body, stamp, signature, json.loads(body)

    def refused(status, error):
        return status, {"error": error}

    body, stamp, signature, request = fresh()
    card = request["card"]
    tampered = (body.replace(b"+15005550006", b"+15005550007"), stamp, signature)
    yield refused(401, "bad signature"), [tampered]
    yield refused(401, "stale or future timestamp"), [fresh(timestamp=time.time() - 301)[:3]]
    yield refused(401, "stale or future timestamp"), [fresh(timestamp=time.time() + 301)[:3]]
    yield refused(400, "malformed request"), [resigned({"card": "1234"}, stamp)]
    not_a_string = {**request, "caller": 15005550006}
    yield refused(400, "malformed request"), [resigned(not_a_string, stamp)]
    other_stamp = {**request, "timestamp": "1"}
    yield refused(400, "timestamp differs from the signed header"), [resigned(other_stamp, stamp)]
    not_the_calls = {**request, "idempotency_key": "0" * 32}
    yield refused(400, "idempotency key is not the call's"), [resigned(not_the_calls, stamp)]
    yield (
        refused(400, "card: does not open for this purpose and call"),
        [resigned(moved_to_another_call(request), stamp)],
    )
    swapped = {**request, "card": request["pin"], "pin": card}
    yield refused(400, "card: does not open for this purpose and call"), [resigned(swapped, stamp)]
    unknown = {**request, "card": card.replace(f".{key.kid}.", ".zz.")}
    yield refused(400, "card: unknown key id zz"), [resigned(unknown, stamp)]
    suite = card.split(".")[1]
    other = "x25519" if suite == "mlkem768x25519" else "mlkem768x25519"
    other_suite = {**request, "card": card.replace(suite, other, 1)}
    yield refused(400, f"card: key {key.kid} is not a {other} key"), [resigned(other_suite, stamp)]
    # A length of 4n + 1 characters holds no whole last byte: no decoder takes it.
    prefix, _, sealed = card.rpartition(".")
    cut = {**request, "card": f"{prefix}.{sealed[: len(sealed) - (len(sealed) - 1) % 4]}"}
    yield refused(400, "card: not base64url"), [resigned(cut, stamp)]
    short = {**request, "card": f"{prefix}.AAAA"}
    yield refused(400, "card: too short"), [resigned(short, stamp)]
    nonsense = {**request, "card": "hpke1.kyber.b1.AAAA"}
    yield refused(400, "card: not a token of a known suite"), [resigned(nonsense, stamp)]

    body, stamp, signature, request = fresh()
    found = {
        "status": "found",
        "account": "AC12345678",
        "balance": "12.55",
        "account_ref": "acct_5f0c9e2a41d7",
    }
    yield (200, {**found, "replayed": True}), [(body, stamp, signature)] * 2
    body, stamp, signature, request = fresh()
    again = resigned({**request, "caller": "+15005550007"}, stamp)
    yield (
        refused(409, "idempotency key reused for another request"),
        [(body, stamp, signature), again],
    )
    body, stamp, signature, request = fresh()
    yield (
        refused(409, "ciphertext already used"),
        [(body, stamp, signature), resigned(moved_to_another_call(request), stamp)],
    )


@pytest.mark.parametrize("kem", ["X25519", "MLKEM768_X25519"])
def test_the_node_backend_answers_every_request_as_the_python_one(
    node_backend, python_backend, keys, kem
):
    for expected, sequence in refused_requests(keys, kem):
        node = [post_to(node_backend, *request) for request in sequence]
        python = [post_to(python_backend, *request) for request in sequence]
        assert node == python
        assert node[-1] == expected
