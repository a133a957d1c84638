"""System checks of the audit log: the database can take its appends, and its table's append-only
triggers are there and enabled."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from django.core.checks import CheckMessage, Error, Tags, register
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder

from audit import appendonly
from keys.database import quiet_when_unreachable

# The audit append and a call's first step write with RETURNING (and ON CONFLICT ... RETURNING),
# which SQLite has from 3.35; Django itself runs on 3.31.
SQLITE_NEEDED = (3, 35)


@register()
def check_sqlite_version(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if connection.vendor != "sqlite" or sqlite3.sqlite_version_info >= SQLITE_NEEDED:
        return []
    return [
        Error(
            f"SQLite {sqlite3.sqlite_version} is too old: the audit log's appends and a call's "
            "first step need RETURNING, which SQLite has from 3.35.",
            hint="Run on PostgreSQL (DATABASE_URL), or with a Python built against SQLite 3.35 "
            "or later.",
            id="audit.E001",
        )
    ]


@register(Tags.database)
@quiet_when_unreachable
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
