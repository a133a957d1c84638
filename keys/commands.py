"""The base of management commands that need the database."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, OperationalError, connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.recorder import MigrationRecorder


def unapplied_migrations() -> list[str]:
    """The migrations this database still lacks, as "app.name"."""
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{migration.app_label}.{migration.name}" for migration, _ in plan]


def missing_migrations() -> str | None:
    """What the database lacks for this code, in a line that says what to do; None when it
    lacks nothing, or cannot be asked: a connection lost mid-command fails the asking too
    ("the connection is closed"), and the error that closed it says why."""
    try:
        if not MigrationRecorder(connection).has_table():
            # SQLite makes a new, empty file for a path that names none: a mistyped
            # DATABASE_URL lands here too.
            return (
                "The database has no tables: run `manage.py migrate`, or check that "
                "DATABASE_URL names the service's database."
            )
        missing = unapplied_migrations()
    except DatabaseError:
        return None
    if not missing:
        return None
    return (
        f"The database lacks {len(missing)} migration(s), {missing[0]} first: run "
        "`manage.py migrate` before this command."
    )


class DatabaseCommand(BaseCommand):
    """A command that reads or writes the database: when it cannot connect, or the database
    lacks migrations, it says so in one line, with what to do, instead of a driver's traceback."""

    def needs_database(self, **options: Any) -> bool:
        return True

    def execute(self, *args: Any, **options: Any) -> Any:
        if not self.needs_database(**options):
            return super().execute(*args, **options)
        try:
            connection.ensure_connection()
        except OperationalError as exc:
            # The driver's first line names the host or file and why; never a password.
            text = str(exc).strip()
            reason = text.splitlines()[0] if text else type(exc).__name__
            raise CommandError(
                f"Cannot connect to the database: {reason}. Check that it is running and that "
                "DATABASE_URL names it."
            ) from None
        try:
            return super().execute(*args, **options)
        except DatabaseError:
            # A missing table or column, most likely: asked only once a query has failed, so a
            # run on a migrated database never loads the migrations.
            lacking = missing_migrations()
            if lacking is None:
                raise
            raise CommandError(lacking) from None
