import base64
import io

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from django.core.management import call_command
from django.core.management.base import CommandError

from keys import hpke


def backend_keypair(*args: str) -> str:
    out = io.StringIO()
    call_command("backend_keypair", *args, stdout=out)
    return out.getvalue()


def test_writes_a_0600_private_key_and_prints_its_public_entry(tmp_path):
    path = tmp_path / "backend.pem"
    output = backend_keypair("--id", "b2026", "--out", str(path))
    assert path.stat().st_mode & 0o777 == 0o600
    private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(private, X25519PrivateKey)
    (key,) = hpke.parse_public_keys(output.strip())
    assert key.kid == "b2026"
    assert key.public_key.public_bytes_raw() == private.public_key().public_bytes_raw()


def test_a_bad_key_id_is_refused(tmp_path):
    with pytest.raises(CommandError, match="--id"):
        backend_keypair("--id", "no spaces", "--out", str(tmp_path / "k.pem"))
    assert not (tmp_path / "k.pem").exists()


def test_an_existing_file_is_not_overwritten(tmp_path):
    path = tmp_path / "backend.pem"
    path.write_bytes(b"kept")
    with pytest.raises(CommandError, match="cannot write"):
        backend_keypair("--id", "b1", "--out", str(path))
    assert path.read_bytes() == b"kept"


def test_a_hybrid_key_is_written_as_its_seed_and_printed_with_its_suite(tmp_path):
    path = tmp_path / "backend-h1.pem"
    output = backend_keypair("--kem", "MLKEM768_X25519", "--id", "h1", "--out", str(path))
    assert path.stat().st_mode & 0o777 == 0o600
    lines = path.read_text().splitlines()
    assert (lines[0], lines[-1]) == (
        "-----BEGIN MLKEM768_X25519 SEED-----",
        "-----END MLKEM768_X25519 SEED-----",
    )
    seed = base64.b64decode("".join(lines[1:-1]))
    assert len(seed) == 32
    kid, suite, public = output.strip().split(":")
    assert (kid, suite) == ("h1", "MLKEM768_X25519")
    assert base64.b64decode(public) == hpke.hybrid_public_bytes(seed)
    (key,) = hpke.parse_public_keys(output.strip())
    assert key.kem is hpke.MLKEM768_X25519


def test_an_unknown_kem_is_refused(tmp_path):
    with pytest.raises(CommandError, match="invalid choice"):
        backend_keypair("--kem", "KYBER", "--id", "b1", "--out", str(tmp_path / "k.pem"))
    assert not (tmp_path / "k.pem").exists()
