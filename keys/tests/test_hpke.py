import base64

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from django.test import override_settings

from keys import hpke
from keys.keyring import SealError, get_keyring

CALL = "CA" + "1" * 32
OTHER_CALL = "CA" + "2" * 32


def keypair(kid: str = "b1") -> tuple[X25519PrivateKey, str]:
    private = X25519PrivateKey.generate()
    raw = private.public_key().public_bytes_raw()
    return private, f"{kid}:{base64.b64encode(raw).decode()}"


def opened(token: str, private: X25519PrivateKey, purpose: str, call_sid: str) -> str:
    body = token.rsplit(".", 1)[1]
    blob = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    return hpke.SUITE.decrypt(blob, private, info=hpke.info(purpose, call_sid)).decode()


def test_a_sealed_value_opens_with_the_backends_private_key_for_its_purpose_and_call():
    private, entry = keypair()
    with override_settings(SECUREGATHER_BACKEND_PUBLIC_KEYS=entry):
        token = hpke.seal("1234", "card", CALL)
    assert token.startswith("hpke1.x25519.b1.") and hpke.is_token(token)
    assert hpke.token_kid(token) == "b1"
    assert opened(token, private, "card", CALL) == "1234"


@pytest.mark.parametrize(("purpose", "call_sid"), [("pin", CALL), ("card", OTHER_CALL)])
def test_a_sealed_value_does_not_open_for_another_purpose_or_call(purpose, call_sid):
    private, entry = keypair()
    with override_settings(SECUREGATHER_BACKEND_PUBLIC_KEYS=entry):
        token = hpke.seal("1234", "card", CALL)
    with pytest.raises(InvalidTag):
        opened(token, private, purpose, call_sid)


def test_the_encapsulated_key_comes_first_and_each_seal_differs():
    _, entry = keypair()
    with override_settings(SECUREGATHER_BACKEND_PUBLIC_KEYS=entry):
        first, second = hpke.seal("1234", "pin", CALL), hpke.seal("1234", "pin", CALL)
    assert first != second
    body = first.rsplit(".", 1)[1]
    blob = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    assert len(blob) == hpke.ENC_BYTES + 4 + hpke.TAG_BYTES


def test_the_first_entry_seals():
    _, first = keypair("new")
    _, second = keypair("old")
    with override_settings(SECUREGATHER_BACKEND_PUBLIC_KEYS=f"{first}, {second}"):
        assert hpke.token_kid(hpke.seal("1234", "card", CALL)) == "new"


def test_the_keyring_cannot_open_a_backend_token():
    _, entry = keypair()
    with override_settings(SECUREGATHER_BACKEND_PUBLIC_KEYS=entry):
        token = hpke.seal("1234", "card", CALL)
    with pytest.raises(SealError):
        get_keyring().open(token, f"calls.CallSession.card:{CALL}")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no public key"),
        ("b1", "not 'kid:base64'"),
        ("b 1:" + "A" * 44, "not 'kid:base64'"),
        ("b1:not base64!", "not base64"),
        ("b1:" + base64.b64encode(b"short").decode(), "not a 32-byte"),
    ],
)
def test_a_bad_public_key_entry_is_refused_without_quoting_it(text, message):
    with pytest.raises(hpke.BackendKeyError, match=message) as caught:
        hpke.parse_public_keys(text)
    assert "not base64!" not in str(caught.value)


def test_a_key_id_given_twice_is_refused():
    _, entry = keypair("b1")
    with pytest.raises(hpke.BackendKeyError, match="twice"):
        hpke.parse_public_keys(f"{entry},{entry}")


def test_write_private_key_makes_an_owner_only_file_and_never_overwrites(tmp_path):
    path = tmp_path / "backend.pem"
    hpke.write_private_key(path, b"pem")
    assert path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(FileExistsError):
        hpke.write_private_key(path, b"other")
    assert path.read_bytes() == b"pem"
