"""Django's ``migrate``, audited (PCI DSS 10.2.1.7: creating and deleting system-level objects).

A run that applies or unapplies migrations writes a ``migrated`` row naming them, by the OS user
who ran it, once it ends: ``failure`` when it stopped partway, naming the migration it failed
in, whose work a migration run outside a transaction leaves behind. A run that changes nothing
writes none, and neither does one that leaves the audit log unable to take a row: its tables
gone (``migrate securegather zero``) or short of what an append writes (``migrate securegather
0004``, before the chain's head). The run forward again is a row.
"""

from contextlib import suppress
from typing import Any

from django.conf import settings
from django.core.management.commands import migrate
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.migrations.recorder import MigrationRecorder

from audit.models import AuditChainHead, AuditEvent
from keys.models import KeyRecord
from staff.auditing import record_command


class Command(migrate.Command):
    def handle(self, *args: Any, **options: Any) -> None:
        database = options["database"]
        self.faked: list[str] = []
        self.running: str | None = None
        if not settings.SECUREGATHER_AUDIT_MIGRATE or database != DEFAULT_DB_ALIAS:
            super().handle(*args, **options)
            return
        before = applied(database)
        flags = {"fake": options["fake"], "prune": options["prune"], "faked": self.faked}
        try:
            super().handle(*args, **options)
        except BaseException:
            # The run's own error is the one to see, even when the database can no longer
            # answer for what it changed.
            with suppress(DatabaseError):
                record(database, before, AuditEvent.Outcome.FAILURE, failed=self.running, **flags)
            raise
        record(database, before, AuditEvent.Outcome.SUCCESS, **flags)

    def migration_progress_callback(
        self, action: str, migration: Any = None, fake: bool = False
    ) -> None:
        # The migration under way, named when the run fails in it: one run outside a
        # transaction (CREATE INDEX CONCURRENTLY) leaves its work behind, recorded or not.
        if action in ("apply_start", "unapply_start"):
            self.running = f"{migration.app_label}.{migration.name}"
        elif action in ("apply_success", "unapply_success"):
            self.running = None
            # --fake-initial marks an initial migration applied, unrun, when its tables are there.
            if fake and action == "apply_success":
                self.faked.append(f"{migration.app_label}.{migration.name}")
        super().migration_progress_callback(action, migration, fake)


def record(
    database: str,
    before: set[str],
    outcome: str,
    *,
    fake: bool,
    prune: bool,
    faked: list[str],
    failed: str | None = None,
) -> None:
    """The ``migrated`` row for what changed since ``before`` and the migration the run
    ``failed`` in, if any, when the audit log can still take it."""
    after = applied(database)
    if (after == before and failed is None) or not appendable(database):
        return
    gone = sorted(before - after)
    # --prune forgets applied migrations deleted from disk, and stops there: no schema changed.
    removed = {"unapplied": [], "pruned": gone} if prune else {"unapplied": gone}
    record_command(
        AuditEvent.Event.MIGRATED,
        outcome,
        applied=sorted(after - before),
        **removed,
        **({"fake": True} if fake else {"faked": sorted(faked)} if faked else {}),
        **({"failed": failed} if failed else {}),
    )


def appendable(database: str) -> bool:
    """Whether the tables an append writes to (the audit table, the chain's head, the key
    records) are there, each with every column this code writes."""
    connection = connections[database]
    with connection.cursor() as cursor:
        tables = set(connection.introspection.table_names(cursor))
        for model in (AuditEvent, AuditChainHead, KeyRecord):
            table = model._meta.db_table
            if table not in tables:
                return False
            columns = {
                c.name for c in connection.introspection.get_table_description(cursor, table)
            }
            if not {field.column for field in model._meta.concrete_fields} <= columns:
                return False
    return True


def applied(database: str) -> set[str]:
    """The migrations the database has, as "app.name"."""
    recorded = MigrationRecorder(connections[database]).applied_migrations()
    return {f"{app}.{name}" for app, name in recorded}
