"""What the staff app keeps of its own: the wrong old passwords an admin session gave."""

from __future__ import annotations

from django.contrib.sessions.models import Session
from django.db import models
from django.db.models import F


class WrongOldPasswords(models.Model):
    """The wrong old passwords one admin session gave on the password change form.

    A row of its own, not a key in the session: a session's requests run at once, and each saves
    the whole session as it loaded it (SESSION_SAVE_EVERY_REQUEST), so a count kept there lost
    the tries made meanwhile (12 sent at once did not sign a session out). Deleted with its session.
    """

    session = models.OneToOneField(
        Session, primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    count = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        # Never the session's key, which signs its holder in.
        return f"{self.count} wrong old password(s)"

    @classmethod
    def session_locked(cls, session_key: str) -> bool:
        """Lock the session's row until the transaction ends, so that a session's tries are
        checked and counted one after another. False when the session is gone (signed out by a
        try sent alongside, or idle)."""
        return Session.objects.select_for_update().filter(pk=session_key).exists()

    @classmethod
    def add_one(cls, session_key: str) -> int:
        """Count one more for a session locked by :meth:`session_locked`; its count."""
        if not cls.objects.filter(pk=session_key).update(count=F("count") + 1):
            cls.objects.create(session_id=session_key, count=1)
        return cls.objects.values_list("count", flat=True).get(pk=session_key)
