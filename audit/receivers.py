"""What the audit log records of the layers below it, through their signals."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from audit.models import AuditEvent
from keys.rotation import Result
from keys.signals import keys_rotated


@receiver(keys_rotated, dispatch_uid="audit.key_rotated")
def key_rotated(sender: Any, primary: str, result: Result, **kwargs: Any) -> None:
    AuditEvent.record(
        AuditEvent.Event.KEY_ROTATED,
        AuditEvent.Outcome.FAILURE
        if result.remaining or result.lacking
        else AuditEvent.Outcome.SUCCESS,
        actor="system",
        channel=AuditEvent.Channel.SYSTEM,
        key_id=primary,
        rotated=dict(result.rotated),
        rows=result.rows,
        remaining=result.remaining,
    )
