"""Calls resolved by the Node.js example backend (examples/backend-node/), over real HTTP: it
opens what SecureGather sealed with each suite, and refuses what it must."""

import json
import time
import urllib.error
import urllib.request
import uuid

import pytest
from django.test import override_settings

from accounts import backend_client
from calls.models import CallSession
from conftest import (
    BACKEND_SECRET,
    FakeCall,
    make_backend_keys,
    require_node_backend,
    spoken,
    start_example_backend,
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
    require_node_backend()
    backend = start_example_backend(*keys.values(), node=True)
    try:
        yield backend
    finally:
        backend.process.terminate()
        backend.process.wait(timeout=10)


@pytest.fixture
def settings_for(node_backend, keys):
    backend_client.BREAKER.succeeded()

    def settings(kem):
        return {
            **node_backend.settings(),
            "SECUREGATHER_BACKEND_PUBLIC_KEYS": ",".join(k.public_entry for k in keys.values()),
            "SECUREGATHER_BACKEND_KEM": kem,
        }

    yield settings
    backend_client.BREAKER.succeeded()


@pytest.fixture
def call(twilio, db):
    # One backend serves the module: each call has a CallSid of its own, as real calls do, so
    # that the backend's idempotency keys, derived from it, never meet across tests.
    return FakeCall(twilio, call_sid=f"CA{uuid.uuid4().hex}")


@pytest.mark.parametrize(("kem", "kid"), KEMS)
def test_the_demo_call_is_verified_by_the_node_backend(call, settings_for, plaintext, kem, kid):
    with override_settings(**settings_for(kem)):
        call.start()
        call.card("1234")
        assert CallSession.objects.get(call_sid=call.call_sid).card.backend_kid == kid
        assert spoken(call.pin("4321")) == FOUND
    plaintext.assert_absent("1234", "4321")


@pytest.mark.parametrize(("kem", "kid"), KEMS)
def test_a_wrong_pin_is_not_found_by_the_node_backend(call, settings_for, plaintext, kem, kid):
    with override_settings(**settings_for(kem)):
        call.start()
        call.card("1234")
        assert CallSession.objects.get(call_sid=call.call_sid).card.backend_kid == kid
        assert spoken(call.pin("9999")) == NOT_FOUND
    plaintext.assert_absent("1234", "9999")


def post(backend, body, timestamp, signature):
    request = urllib.request.Request(  # noqa: S310 (the example backend's http:// URL)
        backend.url,
        data=body,
        headers={"X-SecureGather-Timestamp": timestamp, "X-SecureGather-Signature": signature},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def signed(keys, kem, call_sid, timestamp=None):
    key = hpke.parse_public_keys(keys[kem].public_entry)[0]
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    card, pin = hpke.seal("1234", "card", call_sid, key), hpke.seal("4321", "pin", call_sid, key)
    body = backend_client.request_body(card, pin, "+15005550006", call_sid, stamp)
    return body, stamp, backend_client.sign(BACKEND_SECRET.encode(), stamp, body)


@pytest.mark.parametrize(("kem", "kid"), KEMS)
def test_the_node_backend_refuses_a_tampered_request(node_backend, keys, kem, kid):
    body, stamp, signature = signed(keys, kem, f"CA{kid:0>32}")
    tampered = body.replace(b"+15005550006", b"+15005550007")
    assert post(node_backend, tampered, stamp, signature) == (401, {"error": "bad signature"})


@pytest.mark.parametrize(("kem", "kid"), KEMS)
def test_the_node_backend_refuses_a_stale_request(node_backend, keys, kem, kid):
    body, stamp, signature = signed(keys, kem, f"CB{kid:0>32}", int(time.time()) - 301)
    refused = (401, {"error": "stale or future timestamp"})
    assert post(node_backend, body, stamp, signature) == refused


@pytest.mark.parametrize(("kem", "kid"), KEMS)
def test_the_node_backend_replays_its_first_answer_once_opened(node_backend, keys, kem, kid):
    body, stamp, signature = signed(keys, kem, f"CC{kid:0>32}")
    status, answer = post(node_backend, body, stamp, signature)
    assert (status, answer["status"], answer["account"]) == (200, "found", "AC12345678")
    assert post(node_backend, body, stamp, signature) == (200, {**answer, "replayed": True})


def test_the_node_backend_refuses_a_ciphertext_moved_to_another_call(node_backend, keys):
    body, stamp, _ = signed(keys, "MLKEM768_X25519", "CD" + "0" * 32)
    request = json.loads(body)
    request["call_sid"] = "CE" + "0" * 32
    request["idempotency_key"] = backend_client.idempotency_key(request["call_sid"])
    moved = json.dumps(request).encode()
    signature = backend_client.sign(BACKEND_SECRET.encode(), stamp, moved)
    refused = (400, {"error": "card: does not open for this purpose and call"})
    assert post(node_backend, moved, stamp, signature) == refused
