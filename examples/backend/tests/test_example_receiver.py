"""The receiver the user's backend runs, driven in-process with requests as SecureGather signs
them (accounts.backend_client), its clock injected; every test with keys of each suite."""

import json

import pytest
from django.test import override_settings
from receiver import TOLERANCE, Receiver, found, not_found, sign

from accounts import backend_client
from keys import hpke

CALL = "CA" + "3" * 32
NOW = 1_800_000_000


class Checks:
    def __init__(self):
        self.seen = []

    def __call__(self, card, pin, caller):
        self.seen.append((card, pin, caller))
        return (
            found("AC12345678", "12.55", "ref-1")
            if (card, pin) == ("1234", "4321")
            else not_found()
        )


@pytest.fixture
def checks():
    return Checks()


@pytest.fixture(params=["X25519", "MLKEM768_X25519"])
def backend_keys(request, tmp_path):
    from conftest import make_backend_keys

    return make_backend_keys(tmp_path, "b1", request.param)


@pytest.fixture
def receiver(backend_keys, checks):
    return Receiver(
        secret=b"s" * 32,
        private_keys={backend_keys.kid: backend_keys.private_key},
        check=checks,
        now=lambda: NOW,
    )


@pytest.fixture
def sealed(backend_keys):
    with override_settings(
        SECUREGATHER_BACKEND_PUBLIC_KEYS=backend_keys.public_entry,
        SECUREGATHER_BACKEND_KEM=backend_keys.kem,
    ):

        def seal(card="1234", pin="4321", call_sid=CALL, card_purpose="card", pin_purpose="pin"):
            return hpke.seal(card, card_purpose, call_sid), hpke.seal(pin, pin_purpose, call_sid)

        yield seal


def request(card, pin, *, timestamp=NOW, secret=b"s" * 32, call_sid=CALL):
    stamp = str(timestamp)
    body = backend_client.request_body(card, pin, "+15005550006", call_sid, stamp)
    headers = {
        "X-SecureGather-Timestamp": stamp,
        "X-SecureGather-Signature": sign(secret, stamp, body),
    }
    return headers, body


def test_a_signed_request_is_opened_and_handed_to_the_check(receiver, checks, sealed):
    status, answer = receiver.handle(*request(*sealed()))
    assert (status, answer["status"], answer["account"]) == (200, "found", "AC12345678")
    assert checks.seen == [("1234", "4321", "+15005550006")]


def test_the_client_and_the_receiver_sign_alike():
    assert backend_client.sign(b"k", "1", b"body") == sign(b"k", "1", b"body")


def test_a_tampered_body_is_refused_unchecked(receiver, checks, sealed):
    headers, body = request(*sealed())
    status, answer = receiver.handle(headers, body.replace(b"+1500", b"+1600"))
    assert (status, answer) == (401, {"error": "bad signature"})
    assert checks.seen == []


def test_a_request_signed_with_another_secret_is_refused(receiver, checks, sealed):
    assert receiver.handle(*request(*sealed(), secret=b"t" * 32))[0] == 401
    assert checks.seen == []


@pytest.mark.parametrize("skew", [-TOLERANCE - 1, TOLERANCE + 1])
def test_a_stale_or_future_request_is_refused(receiver, checks, sealed, skew):
    status, answer = receiver.handle(*request(*sealed(), timestamp=NOW + skew))
    assert (status, answer) == (401, {"error": "stale or future timestamp"})
    assert checks.seen == []


def test_a_request_within_the_tolerance_is_answered(receiver, sealed):
    assert receiver.handle(*request(*sealed(), timestamp=NOW - TOLERANCE))[0] == 200


def test_a_replayed_request_gets_the_first_answer_without_a_second_check(receiver, checks, sealed):
    signed = request(*sealed())
    first = receiver.handle(*signed)
    again = receiver.handle(*signed)
    assert again == (200, {**first[1], "replayed": True})
    assert len(checks.seen) == 1


def test_the_same_idempotency_key_with_another_request_is_refused(receiver, checks, sealed):
    receiver.handle(*request(*sealed()))
    status, answer = receiver.handle(*request(*sealed(pin="0000")))
    assert (status, answer) == (409, {"error": "idempotency key reused for another request"})
    assert len(checks.seen) == 1


def test_a_ciphertext_used_once_is_refused_under_another_key(receiver, checks, sealed):
    card, pin = sealed()
    receiver.handle(*request(card, pin))
    # Another call's request carrying this call's tokens: they would not open there either.
    status, answer = receiver.handle(*request(card, pin, call_sid="CA" + "4" * 32))
    assert (status, answer) == (409, {"error": "ciphertext already used"})
    assert len(checks.seen) == 1


def test_swapped_ciphertexts_do_not_open(receiver, checks, sealed):
    card, pin = sealed()
    status, answer = receiver.handle(*request(pin, card))
    assert (status, answer) == (400, {"error": "card: does not open for this purpose and call"})
    assert checks.seen == []


def test_a_ciphertext_of_another_call_does_not_open(receiver, checks, sealed):
    card, pin = sealed(call_sid="CA" + "5" * 32)
    assert receiver.handle(*request(card, pin))[0] == 400
    assert checks.seen == []


def test_an_unknown_key_id_is_refused(receiver, checks, sealed, tmp_path):
    card, pin = sealed()
    card = card.replace(".b1.", ".b9.")
    status, answer = receiver.handle(*request(card, pin))
    assert (status, answer) == (400, {"error": "card: unknown key id b9"})


@pytest.mark.parametrize("old_kem", ["X25519", "MLKEM768_X25519"])
def test_several_private_keys_open_tokens_by_key_id(tmp_path, backend_keys, checks, old_kem):
    from conftest import make_backend_keys

    old = make_backend_keys(tmp_path, "b0", old_kem)
    receiver = Receiver(
        secret=b"s" * 32,
        private_keys={k.kid: k.private_key for k in (backend_keys, old)},
        check=checks,
        now=lambda: NOW,
    )
    # A call sealed to the older key a moment before SecureGather moved on still opens.
    (key,) = hpke.parse_public_keys(old.public_entry)
    card, pin = hpke.seal("1234", "card", CALL, key), hpke.seal("4321", "pin", CALL, key)
    assert receiver.handle(*request(card, pin))[1]["status"] == "found"


def test_a_token_naming_the_other_suite_for_a_key_id_is_refused(receiver, checks, sealed):
    card, pin = sealed()
    suite = card.split(".")[1]
    other = "x25519" if suite == "mlkem768x25519" else "mlkem768x25519"
    card = card.replace(f".{suite}.", f".{other}.", 1)
    status, answer = receiver.handle(*request(card, pin))
    assert (status, answer) == (400, {"error": f"card: key b1 is not a {other} key"})
    assert checks.seen == []


def test_a_seed_file_and_a_pkcs8_file_load_as_their_suites(tmp_path):
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.hpke import MLKEM768X25519PrivateKey

    from conftest import make_backend_keys

    hybrid = make_backend_keys(tmp_path, "h1", "MLKEM768_X25519")
    assert hybrid.pem_file.read_text().startswith("-----BEGIN MLKEM768_X25519 SEED-----\n")
    assert isinstance(hybrid.private_key, MLKEM768X25519PrivateKey)
    assert isinstance(make_backend_keys(tmp_path, "x1").private_key, X25519PrivateKey)


@pytest.mark.parametrize(
    "text",
    [
        b"-----BEGIN MLKEM768_X25519 SEED-----\nc2hvcnQ=\n-----END MLKEM768_X25519 SEED-----\n",
        b"-----BEGIN MLKEM768_X25519 SEED-----\n!!\n-----END MLKEM768_X25519 SEED-----\n",
    ],
    ids=["short seed", "not base64"],
)
def test_a_bad_seed_file_is_refused(text):
    from receiver import load_private_key

    with pytest.raises(ValueError, match="seed"):
        load_private_key(text)


def test_malformed_json_is_refused_and_no_answer_names_a_digit(receiver, sealed):
    stamp = str(NOW)
    body = b'{"card": "1234"'
    headers = {
        "X-SecureGather-Timestamp": stamp,
        "X-SecureGather-Signature": sign(b"s" * 32, stamp, body),
    }
    status, answer = receiver.handle(headers, body)
    assert status == 400 and "1234" not in json.dumps(answer)


def test_an_idempotency_key_not_derived_from_the_call_is_refused_unchecked(
    receiver, checks, sealed
):
    card, pin = sealed()
    stamp = str(NOW)
    body = json.loads(backend_client.request_body(card, pin, "+15005550006", CALL, stamp))
    body["idempotency_key"] = "0" * 32
    raw = json.dumps(body).encode()
    headers = {
        "X-SecureGather-Timestamp": stamp,
        "X-SecureGather-Signature": sign(b"s" * 32, stamp, raw),
    }
    assert receiver.handle(headers, raw) == (400, {"error": "idempotency key is not the call's"})
    assert checks.seen == []


def test_the_client_and_the_receiver_derive_the_same_idempotency_key():
    from receiver import idempotency_key

    assert backend_client.idempotency_key(CALL) == idempotency_key(CALL)


def test_a_timestamp_of_other_digits_is_refused(receiver, checks, sealed):
    headers, body = request(*sealed())
    body = body.replace(str(NOW).encode(), "²".encode())
    headers["X-SecureGather-Timestamp"] = "²"
    headers["X-SecureGather-Signature"] = sign(b"s" * 32, "²", body)
    assert receiver.handle(headers, body) == (401, {"error": "stale or future timestamp"})
    assert checks.seen == []


def test_a_ciphertext_is_known_by_its_bytes_not_its_spelling():
    from receiver import fingerprint

    token = "hpke1.x25519.b1.QUI"  # "AB"
    variant = "hpke1.x25519.b1.QUJ"  # "AB" too: only base64's unused bits differ
    assert fingerprint(token) == fingerprint(variant)
    assert fingerprint(token) != fingerprint("hpke1.x25519.b1.QUM")  # "AC"


def test_a_redelivery_after_a_check_that_raised_is_checked_again(backend_keys, sealed):
    checked = []

    def check(card, pin, caller):
        checked.append(card)
        if len(checked) == 1:
            raise ConnectionError("the accounts database is down")
        return found("AC12345678", "12.55")

    receiver = Receiver(
        secret=b"s" * 32,
        private_keys={backend_keys.kid: backend_keys.private_key},
        check=check,
        now=lambda: NOW,
    )
    signed = request(*sealed())
    with pytest.raises(ConnectionError):
        receiver.handle(*signed)
    status, answer = receiver.handle(*signed)
    assert (status, answer["status"], len(checked)) == (200, "found", 2)
