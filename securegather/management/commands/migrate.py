"""Django's ``migrate``, audited (PCI DSS 10.2.1.7: creating and deleting system-level objects).

A run that applies or unapplies migrations writes a ``migrated`` row naming them, by the OS user
who ran it, once it ends: ``failure`` when it stopped partway, having changed what it names. A
run that changes nothing writes none, and neither does one that leaves no audit table behind
(``migrate securegather zero``).
"""

from contextlib import suppress
from typing import Any

from django.conf import settings
from django.core.management.commands import migrate
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.migrations.recorder import MigrationRecorder

from securegather.models import AuditEvent
from securegather.staff_audit import record_command


class Command(migrate.Command):
    def handle(self, *args: Any, **options: Any) -> None:
        database = options["database"]
        if not settings.SECUREGATHER_AUDIT_MIGRATE or database != DEFAULT_DB_ALIAS:
            super().handle(*args, **options)
            return
        before = applied(database)
        try:
            super().handle(*args, **options)
        except BaseException:
            # The run's own error is the one to see, even when the database can no longer
            # answer for what it changed.
            with suppress(DatabaseError):
                record(database, before, AuditEvent.Outcome.FAILURE, fake=options["fake"])
            raise
        record(database, before, AuditEvent.Outcome.SUCCESS, fake=options["fake"])


def record(database: str, before: set[str], outcome: str, *, fake: bool) -> None:
    """The ``migrated`` row for what changed since ``before``, if anything did and the audit
    table is still there."""
    after = applied(database)
    tables = connections[database].introspection.table_names()
    if after == before or AuditEvent._meta.db_table not in tables:
        return
    record_command(
        AuditEvent.Event.MIGRATED,
        outcome,
        applied=sorted(after - before),
        unapplied=sorted(before - after),
        **({"fake": True} if fake else {}),
    )


def applied(database: str) -> set[str]:
    """The migrations the database has, as "app.name"."""
    recorded = MigrationRecorder(connections[database]).applied_migrations()
    return {f"{app}.{name}" for app, name in recorded}
