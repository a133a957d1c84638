import base64
import hashlib
import json
import os
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
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
    return hpke.X25519.suite.decrypt(blob, private, info=hpke.info(purpose, call_sid)).decode()


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
    assert len(blob) == hpke.X25519.enc_bytes + 4 + hpke.TAG_BYTES


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
        ("b1", "not 'kid:SUITE:base64'"),
        ("b 1:" + "A" * 44, "not 'kid:SUITE:base64'"),
        ("b1:not base64!", "not base64"),
        ("b1:" + base64.b64encode(b"short").decode(), "not a 32-byte X25519"),
        ("b1:X25519:" + base64.b64encode(b"short").decode(), "not a 32-byte X25519"),
        ("b1:MLKEM768_X25519:" + "A" * 44, "not a 1216-byte MLKEM768_X25519"),
        ("b1:KYBER:" + "A" * 44, "names no known suite"),
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


# --- The hybrid suite, X-Wing (ML-KEM-768 with X25519).

VECTORS = json.loads((Path(__file__).parent / "xwing_vectors.json").read_text())["vectors"]
# X-Wing's combiner label, "\.//^\": the shared secret is SHA3-256(ss_M ‖ ss_X ‖ ct_X ‖ pk_X ‖
# label) in the draft.
XWING_LABEL = b"\\.//^\\"


def hybrid_keypair(kid: str = "h1") -> tuple[bytes, str]:
    seed = os.urandom(32)
    public = base64.b64encode(hpke.hybrid_public_bytes(seed)).decode()
    return seed, f"{kid}:MLKEM768_X25519:{public}"


def opened_hybrid(token: str, seed: bytes, purpose: str, call_sid: str) -> str:
    body = token.rsplit(".", 1)[1]
    blob = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    # The backend's expansion of the seed (the example receiver's), as it opens the token.
    from receiver import hybrid_private_key

    private = hybrid_private_key(seed)
    return hpke.MLKEM768_X25519.suite.decrypt(blob, private, info=hpke.info(purpose, call_sid))


@pytest.mark.parametrize("vector", VECTORS, ids=["vector 1", "vector 2", "vector 3"])
def test_a_seed_expands_to_the_drafts_public_key(vector):
    seed = bytes.fromhex(vector["seed"])
    assert hpke.hybrid_public_bytes(seed) == bytes.fromhex(vector["pk"])


@pytest.mark.parametrize("vector", VECTORS, ids=["vector 1", "vector 2", "vector 3"])
def test_a_seeds_private_halves_decapsulate_the_drafts_ciphertext(vector):
    # The public key alone would not show that the X25519 half of the private key is the
    # draft's: decapsulating its ciphertext to its shared secret does.
    encapsulation, exchange = hpke.seed_keys(bytes.fromhex(vector["seed"]))
    ciphertext = bytes.fromhex(vector["ct"])
    ct_m, ct_x = ciphertext[:1088], ciphertext[1088:]
    ss_m = encapsulation.decapsulate(ct_m)
    ss_x = exchange.exchange(X25519PublicKey.from_public_bytes(ct_x))
    pk_x = exchange.public_key().public_bytes_raw()
    shared = hashlib.sha3_256(ss_m + ss_x + ct_x + pk_x + XWING_LABEL).digest()
    assert shared == bytes.fromhex(vector["ss"])


def test_a_hybrid_token_opens_with_the_seed_for_its_purpose_and_call_only():
    seed, entry = hybrid_keypair()
    with override_settings(
        SECUREGATHER_BACKEND_PUBLIC_KEYS=entry, SECUREGATHER_BACKEND_KEM="MLKEM768_X25519"
    ):
        token = hpke.seal("1234", "card", CALL)
    assert token.startswith("hpke1.mlkem768x25519.h1.") and hpke.token_kid(token) == "h1"
    assert opened_hybrid(token, seed, "card", CALL) == b"1234"
    for purpose, call_sid in (("pin", CALL), ("card", OTHER_CALL)):
        with pytest.raises(InvalidTag):
            opened_hybrid(token, seed, purpose, call_sid)


def test_a_hybrid_token_fits_its_column_with_the_longest_key_id():
    _, entry = hybrid_keypair("k" * 32)
    (key,) = hpke.parse_public_keys(entry)
    token = hpke.seal("1234", "pin", CALL, key)
    body = token.rsplit(".", 1)[1]
    assert len(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))) == 1120 + 4 + 16
    assert hpke.is_token(token) and len(token) == 1574 <= hpke.TOKEN_MAX_LENGTH


def test_the_kem_setting_picks_the_first_key_of_its_suite_from_a_mixed_ring():
    _, old = keypair("x1")
    _, new = hybrid_keypair("h1")
    _, newer = hybrid_keypair("h2")
    ring = f"{old},{new},{newer}"
    with override_settings(SECUREGATHER_BACKEND_PUBLIC_KEYS=ring):
        assert hpke.seal("1234", "card", CALL).startswith("hpke1.x25519.x1.")
        with override_settings(SECUREGATHER_BACKEND_KEM="MLKEM768_X25519"):
            assert hpke.seal("1234", "card", CALL).startswith("hpke1.mlkem768x25519.h1.")


def test_a_kem_without_a_key_in_the_ring_seals_nothing():
    _, entry = keypair("x1")
    with (
        override_settings(
            SECUREGATHER_BACKEND_PUBLIC_KEYS=entry, SECUREGATHER_BACKEND_KEM="MLKEM768_X25519"
        ),
        pytest.raises(hpke.BackendKeyError, match="no MLKEM768_X25519 key"),
    ):
        hpke.seal("1234", "card", CALL)


def test_an_x25519_entry_may_name_its_suite():
    private, entry = keypair("x1")
    kid, encoded = entry.split(":")
    (key,) = hpke.parse_public_keys(f"{kid}:X25519:{encoded}")
    assert key.kem is hpke.X25519
    assert key.public_key.public_bytes_raw() == private.public_key().public_bytes_raw()


def opened_with_file(token: str, private_file: bytes, purpose: str, call_sid: str) -> str:
    # The example receiver reads both kinds of file, as a backend would.
    from receiver import load_private_key

    kem = hpke.BY_TOKEN_NAME[token.split(".")[1]]
    body = token.rsplit(".", 1)[1]
    blob = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    private = load_private_key(private_file)
    return kem.suite.decrypt(blob, private, info=hpke.info(purpose, call_sid)).decode()


@pytest.mark.parametrize("kem", ["X25519", "MLKEM768_X25519"])
def test_new_keypair_names_its_suite_and_its_file_opens_what_seals_to_it(kem):
    private_file, public = hpke.new_keypair(kem)
    (key,) = hpke.parse_public_keys(f"b9:{public}")
    assert key.kem.name == kem
    token = hpke.seal("1234", "card", CALL, key)
    assert opened_with_file(token, private_file, "card", CALL) == "1234"


def test_a_token_is_as_long_as_its_suites_seal():
    _, x_entry = keypair("x1")
    _, h_entry = hybrid_keypair("h1")
    (x_key,) = hpke.parse_public_keys(x_entry)
    (h_key,) = hpke.parse_public_keys(h_entry)
    x_token, h_token = hpke.seal("1234", "pin", CALL, x_key), hpke.seal("1234", "pin", CALL, h_key)
    assert hpke.is_token(x_token) and hpke.is_token(h_token)
    # Each body under the other suite's name is no token: too long for X25519, too short for
    # X-Wing.
    x_body, h_body = x_token.rsplit(".", 1)[1], h_token.rsplit(".", 1)[1]
    assert not hpke.is_token(f"hpke1.x25519.x1.{h_body}")
    assert hpke.token_kid(f"hpke1.mlkem768x25519.h1.{x_body}") is None


def test_bytes_that_are_no_hybrid_public_key_are_refused():
    entry = "h1:MLKEM768_X25519:" + base64.b64encode(b"\xff" * 1216).decode()
    with pytest.raises(hpke.BackendKeyError, match="entry 1 \\(h1\\) is no MLKEM768_X25519"):
        hpke.parse_public_keys(entry)
