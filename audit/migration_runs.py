"""Each ``manage.py migrate`` run that changes the schema, in the audit log (PCI DSS 10.2.1.7:
creating and deleting system-level objects), recorded from Django's pre_migrate and post_migrate
signals (audit/receivers.py), so that Django's own command runs unchanged.

A run with migrations to apply or unapply writes two ``migrated`` rows by the OS user who ran it:
``info`` as it starts, naming its plan in order (``applying`` or ``unapplying``), and ``success``
once it ends, naming what changed (``applied``, ``unapplied``). Django sends no signal when a run
fails, so a failed run is one that started and never ended: the next run, even one with nothing to
do, finds that the newest ``migrated`` row is a start and writes a ``failure`` row for it, by
whoever ran it, naming what of its plan was done and the migration it stopped in. Until then,
``check --database default`` (which ``migrate`` runs first) warns of it: audit.W001.

No row is written where the audit log cannot take one: before its tables exist (the first run's
start), once a run has removed them (``migrate audit zero``), or for another database. Nor under
SECUREGATHER_AUDIT_MIGRATE = False: the test settings, whose every test database is made by migrate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.apps import AppConfig, apps
from django.conf import settings
from django.core.checks import CheckMessage, Tags, register
from django.core.checks import Warning as CheckWarning
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations import Migration
from django.db.migrations.recorder import MigrationRecorder

from audit.models import AuditChainHead, AuditEvent
from audit.system import record_command
from keys.database import quiet_when_unreachable
from keys.models import KeyRecord

Plan = Sequence[tuple[Migration, bool]]  # (migration, backwards), as migrate hands it out


@dataclass
class Run:
    """A run under way in this process, between its pre_migrate and its post_migrate."""

    plan: Plan
    before: set[str]
    started: bool  # whether its start row was written


# By database alias. migrate sends each signal once per app: the run starts at the first app's
# pre_migrate and ends at the last app's post_migrate, once the receivers connected before this
# one (content types, permissions, staff's roles) have run for every app.
_runs: dict[str, Run] = {}


def _apps_signalled() -> list[AppConfig]:
    """The apps migrate sends pre_migrate and post_migrate for, in its order."""
    return [config for config in apps.get_app_configs() if config.models_module is not None]


def _audited(using: str) -> bool:
    return bool(settings.SECUREGATHER_AUDIT_MIGRATE) and using == DEFAULT_DB_ALIAS


def run_started(sender: AppConfig, using: str, plan: Plan | None) -> None:
    """pre_migrate: record the run that stopped before this one, if any, then this one's start."""
    if plan is None or not _audited(using) or sender is not _apps_signalled()[0]:
        return
    recordable = appendable(using)
    if recordable:
        record_unfinished(using)
    started = bool(plan) and recordable
    if started:
        record_command(
            AuditEvent.Event.MIGRATED,
            AuditEvent.Outcome.INFO,
            run="started",
            applying=[name(migration) for migration, backwards in plan if not backwards],
            unapplying=[name(migration) for migration, backwards in plan if backwards],
        )
    _runs[using] = Run(plan, applied(using), started)


def run_ended(sender: AppConfig, using: str, plan: Plan | None) -> None:
    """post_migrate: the run's end, naming what it changed."""
    if not _audited(using) or sender is not _apps_signalled()[-1]:
        return
    run = _runs.get(using)
    if run is None or run.plan is not plan:
        return  # no run of this process: flush sends post_migrate too
    del _runs[using]
    after = applied(using)
    if (after == run.before and not run.started) or not appendable(using):
        return
    record_command(
        AuditEvent.Event.MIGRATED,
        AuditEvent.Outcome.SUCCESS,
        applied=sorted(after - run.before),
        unapplied=sorted(run.before - after),
    )


def unfinished() -> AuditEvent | None:
    """The start row of a run that has not ended: still under way, or stopped partway."""
    newest = AuditEvent.objects.filter(event=AuditEvent.Event.MIGRATED).order_by("-id").first()
    return newest if newest is not None and newest.outcome == AuditEvent.Outcome.INFO else None


def record_unfinished(using: str) -> None:
    """A ``failure`` row for the run that started and never ended, by whoever ran it."""
    start = unfinished()
    if start is None:
        return
    now = applied(using)
    applying: list[str] = start.detail.get("applying", [])
    unapplying: list[str] = start.detail.get("unapplying", [])
    # A run takes its plan in order and records each migration as it completes, so the first
    # one not done is the one it stopped in; one run outside a transaction (CREATE INDEX
    # CONCURRENTLY) leaves its work behind though it is not recorded as applied.
    not_done = [m for m in applying if m not in now] + [m for m in unapplying if m in now]
    detail: dict[str, Any] = {
        "run": "unfinished",
        "started_at": start.created_at.isoformat(),
        "applied": [m for m in applying if m in now],
        "unapplied": [m for m in unapplying if m not in now],
    }
    if not_done:
        detail["failed"] = not_done[0]
    AuditEvent.record(
        AuditEvent.Event.MIGRATED,
        AuditEvent.Outcome.FAILURE,
        actor=start.actor,
        channel=AuditEvent.Channel.SYSTEM,
        **detail,
    )


def appendable(using: str) -> bool:
    """Whether the tables an append writes to (the audit table, the chain's head, the key
    records) are there: not before the first run has made them, nor after `migrate audit zero`."""
    tables = set(connections[using].introspection.table_names())
    return all(model._meta.db_table in tables for model in (AuditEvent, AuditChainHead, KeyRecord))


def applied(using: str) -> set[str]:
    """The migrations the database has, as "app.name"."""
    recorded = MigrationRecorder(connections[using]).applied_migrations()
    return {f"{app}.{migration}" for app, migration in recorded}


def name(migration: Migration) -> str:
    return f"{migration.app_label}.{migration.name}"


@register(Tags.database)
@quiet_when_unreachable
def check_migrate_runs_ended(
    app_configs: Any = None, databases: Sequence[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Runs with ``check --database default``, and before each ``migrate``."""
    if not databases or DEFAULT_DB_ALIAS not in databases or not appendable(DEFAULT_DB_ALIAS):
        return []
    start = unfinished()
    if start is None:
        return []
    return [
        CheckWarning(
            f"The migrate run {start.actor} started at {start.created_at:%Y-%m-%d %H:%M:%S} UTC "
            "has not ended: it is still running, or it stopped partway.",
            hint="If none is running, see what it left with `manage.py showmigrations`, mend "
            "the cause and run `manage.py migrate`: that run records the unfinished one as "
            "failed (docs/audit-events.md).",
            id="audit.W001",
        )
    ]
