"""Django's ``migrate``, audited (PCI DSS 10.2.1.7: creating and deleting system-level objects).

A run that applies or unapplies migrations writes a ``migrated`` row naming them, by the OS user
who ran it, once it ends: ``failure`` when it stopped partway, having changed what it names. A
run that changes nothing writes none, and neither does one that leaves no audit table behind
(``migrate securegather zero``).
"""

from typing import Any

from django.conf import settings
from django.core.management.commands import migrate
from django.db import DEFAULT_DB_ALIAS, connections
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
        finished = False
        try:
            super().handle(*args, **options)
            finished = True
        finally:
            after = applied(database)
            if (
                after != before
                and AuditEvent._meta.db_table in connections[database].introspection.table_names()
            ):
                record_command(
                    AuditEvent.Event.MIGRATED,
                    AuditEvent.Outcome.SUCCESS if finished else AuditEvent.Outcome.FAILURE,
                    applied=sorted(after - before),
                    unapplied=sorted(before - after),
                    **({"fake": True} if options["fake"] else {}),
                )


def applied(database: str) -> set[str]:
    """The migrations the database has, as "app.name"."""
    recorded = MigrationRecorder(connections[database]).applied_migrations()
    return {f"{app}.{name}" for app, name in recorded}
