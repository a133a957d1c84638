"""What the tutorial-compatible API remembers: a keyed digest of every ciphertext it accepted."""

from __future__ import annotations

from django.db import IntegrityError, models, transaction

from securegather.keyring import get_keyring

PURPOSE = "legacy.AcceptedCiphertext"


class AcceptedCiphertext(models.Model):
    """One accepted ciphertext, by keyed digest only: a row can prove a replay, not reveal a value.

    The tutorial's Functions put the card ciphertext in a ``<Gather action>`` URL, so it lands in
    Twilio's request logs; whoever reads it there could post it again. Each is taken once.
    """

    # "kid:hex" HMAC-SHA256 of the ciphertext bytes under the keyring's digest subkey.
    digest = models.CharField(max_length=100, unique=True, editable=False)
    accepted_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-accepted_at"]
        verbose_name = "accepted ciphertext"

    def __str__(self) -> str:
        return self.digest.partition(":")[0] + ":…"

    @classmethod
    def accept(cls, raw: bytes) -> bool:
        """Record ``raw`` as used; False when it was accepted before (under any key of the ring)."""
        ring = get_keyring()
        value = raw.hex()
        if cls.objects.filter(digest__in=ring.digests(value, PURPOSE)).exists():
            return False
        try:
            # A savepoint: two requests racing with the same ciphertext meet the unique
            # constraint, and the loser's transaction stays usable for its audit row.
            with transaction.atomic():
                cls.objects.create(digest=ring.digest(value, PURPOSE))
        except IntegrityError:
            return False
        return True
