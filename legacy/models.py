"""What the tutorial-compatible API remembers: a digest of every ciphertext it accepted."""

from __future__ import annotations

import hashlib

from django.db import IntegrityError, models, transaction


class AcceptedCiphertext(models.Model):
    """One accepted ciphertext, by digest only: a row can prove a replay, not reveal a value.

    The tutorial's Functions put the card ciphertext in a ``<Gather action>`` URL, so it lands in
    Twilio's request logs; whoever reads it there could post it again. Each is taken once.
    """

    # SHA-256 of the ciphertext bytes. Unkeyed on purpose: a ciphertext is a random 96-bit nonce
    # plus GCM output, so its hash gives nothing away (unlike a hash of 4 digits), and a digest
    # under no key survives key rotation: a keyed one would forget every ciphertext accepted
    # under a key once that key left the ring, and let them be replayed.
    digest = models.CharField(max_length=64, unique=True, editable=False)
    accepted_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-accepted_at"]
        verbose_name = "accepted ciphertext"

    def __str__(self) -> str:
        return self.digest[:12] + "…"

    @classmethod
    def accept(cls, raw: bytes) -> bool:
        """Record ``raw`` as used; False when it was accepted before."""
        digest = hashlib.sha256(raw).hexdigest()
        try:
            # A savepoint: two requests racing with the same ciphertext meet the unique
            # constraint, and the loser's transaction stays usable for its audit row.
            with transaction.atomic():
                cls.objects.create(digest=digest)
        except IntegrityError:
            return False
        return True
