"""What the database knows of each key id: the check value of its bytes, first use, seals."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import models
from django.db.models import F
from django.utils import timezone

from keys.keyring import Key, Keyring, KeyringError


class KeyRecord(models.Model):
    """What the database knows of a key id: the check value of its bytes, first use, seals.

    A key id must always mean the same bytes: values sealed under it would stop opening and
    digests stop matching if it did not. ``check_value`` is a keyed digest of a fixed label
    (``Key.check_value``), never the key. ``sealed_count`` is approximate: each process adds its
    seals in batches (``keys.sealed.SEALS_PER_RECORD``), so a killed process's last few
    are not counted.
    """

    kid = models.CharField("key id", max_length=32, unique=True)
    check_value = models.CharField(max_length=16)
    first_seen = models.DateTimeField(default=timezone.now)
    sealed_count = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["first_seen", "kid"]

    def __str__(self) -> str:
        return self.kid

    @classmethod
    def remember(cls, keys: Iterable[Key]) -> list[str]:
        """Record unseen key ids; return the ids whose bytes differ from those recorded."""
        keys = list(keys)
        KeyRecord.objects.bulk_create(
            [KeyRecord(kid=key.kid, check_value=key.check_value) for key in keys],
            ignore_conflicts=True,  # another process may record the same id at the same time
        )
        return cls.changed(keys)

    @classmethod
    def changed(cls, keys: Iterable[Key]) -> list[str]:
        """The ids among ``keys`` whose recorded check value is not theirs."""
        values = {key.kid: key.check_value for key in keys}
        recorded = cls.objects.filter(kid__in=values).values_list("kid", "check_value")
        return sorted(kid for kid, check in recorded if check != values[kid])

    @classmethod
    def record_use(cls, ring: Keyring) -> None:
        """On a process's first seal, check the ring's ids; then add its seals to the counts.

        Raises KeyringError, and seals nothing more, when an id's bytes changed.
        """
        if not ring.recorded:
            changed = cls.remember(ring.every_key)
            if changed:
                raise KeyringError(
                    f"key id {changed[0]!r} now holds other bytes than it did: "
                    "values sealed under it would not open",
                    "changed",
                )
            ring.recorded = True
        seals, ring.unrecorded_seals = ring.unrecorded_seals, 0
        if seals:
            counted = cls.objects.filter(kid=ring.primary.kid).update(
                sealed_count=F("sealed_count") + seals
            )
            if not counted:
                # The first seal's transaction rolled back, and its record with it: recorded
                # again now, and this batch's seals counted on it rather than dropped.
                ring.recorded = False
                ring.unrecorded_seals += seals
                cls.record_use(ring)
