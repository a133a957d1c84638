"""System check of the audit table: its append-only triggers are there and enabled."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.checks import CheckMessage, Error, Tags, register
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder

from audit import appendonly


@register(Tags.database)
def check_audit_log_protected(
    app_configs: Any = None, databases: Sequence[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Runs with ``check --database default``."""
    if not databases or "default" not in databases:
        return []
    if appendonly.MIGRATION not in MigrationRecorder(connection).applied_migrations():
        return []  # the migration that creates them is still to run (`migrate` checks first)
    missing = appendonly.missing_triggers(connection)
    if not missing:
        return []
    return [
        Error(
            "The audit table's append-only triggers are missing or disabled "
            f"({', '.join(missing)}): its rows can be changed or deleted unrefused.",
            hint="Put them back (docs/operations.md, 'The audit table takes changes'), then run "
            "`manage.py verify_audit_log`.",
            id="securegather.E009",
        )
    ]
