"""Calls resolved by the example backend with each suite, and a deployment moving from X25519
to the hybrid (X-Wing) while a call is under way: the backend holds both private keys."""

import pytest
from django.test import override_settings

from audit.models import AuditEvent
from calls.models import CallSession
from conftest import make_backend_keys, running_backend, spoken

pytestmark = pytest.mark.django_db

FOUND = "Thank you. Your account number is AC12345678 and your balance is 12.55"


@pytest.fixture
def backend(tmp_path):
    """A backend whose ring is that of a move: the old X25519 key and the new hybrid one."""
    old, new = (
        make_backend_keys(tmp_path, "x1"),
        make_backend_keys(tmp_path, "h1", "MLKEM768_X25519"),
    )
    with running_backend(old, new) as backend:
        yield backend


@pytest.mark.parametrize(
    ("kem", "suite"), [("X25519", "x25519"), ("MLKEM768_X25519", "mlkem768x25519")]
)
def test_the_demo_call_is_verified_with_each_suite(call, backend, plaintext, kem, suite):
    with override_settings(**backend.settings(kem)):
        call.start()
        call.card("1234")
        assert CallSession.objects.get().card.token.startswith(f"hpke1.{suite}.")
        assert spoken(call.pin("4321")) == FOUND
    kid = "h1" if kem == "MLKEM768_X25519" else "x1"
    keys = AuditEvent.objects.filter(event__in=["card_entered", "pin_entered"])
    assert set(keys.values_list("key_id", flat=True)) == {f"backend:{kid}"}
    plaintext.assert_absent("1234", "4321")


def test_a_call_sealed_on_both_sides_of_the_switch_is_verified(call, backend, plaintext):
    # The card arrives before the reload that switches the suite, the PIN after it.
    with override_settings(**backend.settings("X25519")):
        call.start()
        call.card("1234")
    with override_settings(**backend.settings("MLKEM768_X25519")):
        assert CallSession.objects.get().card.backend_kid == "x1"
        assert spoken(call.pin("4321")) == FOUND
    rows = AuditEvent.objects.filter(event__in=["card_entered", "pin_entered"])
    assert dict(rows.values_list("event", "key_id")) == {
        "card_entered": "backend:x1",
        "pin_entered": "backend:h1",
    }
    plaintext.assert_absent("1234", "4321")
