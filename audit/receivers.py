"""What the audit log records of the layers below it, and of Django's migrate, through their
signals."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate, pre_migrate
from django.dispatch import receiver

from audit import checkpoints, migration_runs
from audit.models import AuditEvent
from audit.signals import rows_appended
from keys.rotation import Result
from keys.signals import keys_rotated


@receiver(keys_rotated, dispatch_uid="audit.key_rotated")
def key_rotated(sender: Any, primary: str, result: Result, **kwargs: Any) -> None:
    """A record of what rotate_keys did. It vouches for no key: audit.chain.verify trusts only
    the ring and the operator, since whoever can write the database could write this row too."""
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


@receiver(rows_appended, dispatch_uid="audit.checkpoint")
def checkpoint_when_due(sender: Any, last_id: int, head_mac: str, **kwargs: Any) -> None:
    """A comparison, unless a signed checkpoint is due: then it is written once the rows
    commit (audit.checkpoints)."""
    checkpoints.after_append(last_id, head_mac)
