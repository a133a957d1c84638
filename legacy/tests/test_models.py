"""AcceptedCiphertext: each ciphertext is taken once, across key rotations."""

from __future__ import annotations

import pytest

from legacy.models import AcceptedCiphertext

RAW = bytes(range(40))
pytestmark = pytest.mark.django_db


def test_a_ciphertext_is_accepted_once():
    assert AcceptedCiphertext.accept(RAW) is True
    assert AcceptedCiphertext.accept(RAW) is False
    assert AcceptedCiphertext.accept(RAW[:-1]) is True


def test_a_digest_made_under_an_older_key_still_refuses_the_replay(settings):
    AcceptedCiphertext.accept(RAW)
    settings.SECUREGATHER_KEYS = "test3:" + "33" * 32 + "," + settings.SECUREGATHER_KEYS
    assert AcceptedCiphertext.accept(RAW) is False


def test_the_row_names_its_key_but_not_its_ciphertext():
    AcceptedCiphertext.accept(RAW)
    row = AcceptedCiphertext.objects.get()
    assert row.digest.startswith("test2:") and RAW.hex() not in row.digest
    assert str(row) == "test2:…"


def test_the_unique_constraint_refuses_a_concurrent_duplicate(monkeypatch):
    """Two requests that both passed the lookup: the database decides, the loser is refused."""
    AcceptedCiphertext.accept(RAW)
    monkeypatch.setattr(
        AcceptedCiphertext.objects, "filter", lambda **kw: AcceptedCiphertext.objects.none()
    )
    assert AcceptedCiphertext.accept(RAW) is False
