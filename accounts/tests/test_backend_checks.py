import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from django.test import override_settings

from accounts.checks import check_backend
from accounts.resolvers import HttpResolver

HTTP_RESOLVER = "accounts.resolvers.HttpResolver"

PUBLIC = (
    "b1:" + base64.b64encode(X25519PrivateKey.generate().public_key().public_bytes_raw()).decode()
)
GOOD = {
    "SECUREGATHER_RESOLVER": HTTP_RESOLVER,
    "SECUREGATHER_BACKEND_URL": "https://accounts.example.com/resolve",
    "SECUREGATHER_BACKEND_PUBLIC_KEYS": PUBLIC,
    "SECUREGATHER_BACKEND_SECRET": "s" * 32,
}


def ids(**changes):
    with override_settings(**{**GOOD, **changes}):
        return [message.id for message in check_backend()]


def test_a_good_configuration_passes():
    assert ids() == []


def test_nothing_is_checked_for_the_database_resolver():
    assert (
        ids(
            SECUREGATHER_RESOLVER="accounts.resolvers.DatabaseResolver", SECUREGATHER_BACKEND_URL=""
        )
        == []
    )


def test_plain_http_to_this_host_passes():
    assert ids(SECUREGATHER_BACKEND_URL="http://127.0.0.1:8800/resolve") == []


@pytest.mark.parametrize(
    "url", ["", "accounts.example.com", "http://accounts.example.com/", "ftp://127.0.0.1/"]
)
def test_a_bad_url_is_e010(url):
    assert ids(SECUREGATHER_BACKEND_URL=url) == ["accounts.E010"]


@pytest.mark.parametrize("keys", ["", "b1", "b1:abc", f"{PUBLIC},{PUBLIC}"])
def test_a_bad_public_key_entry_is_e011(keys):
    assert ids(SECUREGATHER_BACKEND_PUBLIC_KEYS=keys) == ["accounts.E011"]


@pytest.mark.parametrize("secret", ["", "s" * 31])
def test_a_missing_or_short_secret_is_e012(secret):
    assert ids(SECUREGATHER_BACKEND_SECRET=secret) == ["accounts.E012"]


def test_a_client_certificate_without_its_key_is_e013(tmp_path):
    cert = tmp_path / "client.pem"
    cert.write_text("cert")
    assert ids(SECUREGATHER_BACKEND_CLIENT_CERT=str(cert)) == ["accounts.E013"]


def test_a_missing_ca_file_is_e013(tmp_path):
    assert ids(SECUREGATHER_BACKEND_CA_FILE=str(tmp_path / "none.pem")) == ["accounts.E013"]


@pytest.mark.parametrize("timeout", [0, 10.5])
def test_a_timeout_out_of_bounds_is_e014(timeout):
    assert ids(SECUREGATHER_BACKEND_TIMEOUT=timeout) == ["accounts.E014"]


class LocalResolver(HttpResolver):
    """A user's own subclass: it seals to the backend too, so its settings are checked alike."""


@override_settings(
    SECUREGATHER_RESOLVER="accounts.tests.test_backend_checks.LocalResolver",
    SECUREGATHER_BACKEND_URL="",
)
def test_a_subclass_of_the_http_resolver_is_checked_too():
    assert "accounts.E010" in [error.id for error in check_backend()]


@pytest.mark.parametrize("kem", ["", "x25519", "MLKEM1024_P384"])
def test_an_unknown_kem_is_e015(kem):
    assert ids(SECUREGATHER_BACKEND_KEM=kem) == ["accounts.E015"]


def test_a_kem_with_no_key_of_its_suite_in_the_ring_is_e015():
    assert ids(SECUREGATHER_BACKEND_KEM="MLKEM768_X25519") == ["accounts.E015"]


def test_a_mixed_ring_passes_with_either_kem():
    from keys import hpke

    _, hybrid = hpke.new_keypair("MLKEM768_X25519")
    ring = f"{PUBLIC},h1:{hybrid}"
    for kem in ("X25519", "MLKEM768_X25519"):
        assert ids(SECUREGATHER_BACKEND_PUBLIC_KEYS=ring, SECUREGATHER_BACKEND_KEM=kem) == []
