"""How the admin shows a sealed value: a mask and the key that sealed it, never the token."""

from keys import hpke
from keys.keyring import get_keyring
from keys.sealed import Sealed
from staff.admin_site import masked


def test_a_value_sealed_by_the_ring_names_its_key():
    token = get_keyring().seal("1234", "calls.CallSession.card_last4")
    shown = masked(Sealed(token))
    assert shown == f"•••• (key {get_keyring().primary.kid})" and "1234" not in shown


def test_a_value_sealed_to_the_backend_names_the_backends_key():
    _, public = hpke.new_keypair()
    (key,) = hpke.parse_public_keys(f"b7:{public}")
    value = Sealed(hpke.seal("1234", "card", "CA" + "0" * 32, key=key))
    assert masked(value) == "•••• (sealed to backend key b7)"
    assert repr(value) == "<Sealed •••• backend_kid=b7>"


def test_no_value_is_a_dash():
    assert masked(None) == "—"
