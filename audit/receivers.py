"""What the audit log records of the layers below it, and of Django's migrate, through their
signals."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate, pre_migrate
from django.dispatch import receiver

from audit import migration_runs
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


@receiver(pre_migrate, dispatch_uid="audit.migrate_started")
def migrate_started(
    sender: AppConfig, using: str, plan: migration_runs.Plan | None = None, **kwargs: Any
) -> None:
    migration_runs.run_started(sender, using, plan)


@receiver(post_migrate, dispatch_uid="audit.migrate_ended")
def migrate_ended(
    sender: AppConfig, using: str, plan: migration_runs.Plan | None = None, **kwargs: Any
) -> None:
    migration_runs.run_ended(sender, using, plan)
