"""AcceptedCiphertext: each ciphertext is taken once, across key rotations."""

from __future__ import annotations

import hashlib

import pytest

from legacy.models import AcceptedCiphertext

RAW = bytes(range(40))
pytestmark = pytest.mark.django_db


def test_a_ciphertext_is_accepted_once():
    # No lookup first: the unique constraint decides, so two racing requests can't both win.
    assert AcceptedCiphertext.accept(RAW) is True
    assert AcceptedCiphertext.accept(RAW) is False
    assert AcceptedCiphertext.objects.count() == 1
    assert AcceptedCiphertext.accept(RAW[:-1]) is True


def test_a_replay_is_refused_after_the_keyring_rotated_and_lost_its_old_key(settings):
    AcceptedCiphertext.accept(RAW)
    settings.SECUREGATHER_KEYS = "test3:" + "33" * 32
    assert AcceptedCiphertext.accept(RAW) is False


def test_the_row_holds_a_digest_not_the_ciphertext():
    AcceptedCiphertext.accept(RAW)
    row = AcceptedCiphertext.objects.get()
    assert row.digest == hashlib.sha256(RAW).hexdigest() and RAW.hex() not in row.digest
    assert str(row) == row.digest[:12] + "…"
