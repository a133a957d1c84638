"""The base of management commands that need the database."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from keys.database import missing_migrations, unreachable


class DatabaseCommand(BaseCommand):
    """A command that reads or writes the database: when it cannot connect, or the database
    lacks migrations, it says so in one line, with what to do, instead of a driver's traceback."""

    def needs_database(self, **options: Any) -> bool:
        return True

    # Commands whose work goes through code that turns database errors into something else (a
    # webhook's apology, say) ask before they start; the others only once a query has failed,
    # so that a run on a migrated database never loads the migrations.
    check_migrations_first = False

    def execute(self, *args: Any, **options: Any) -> Any:
        if not self.needs_database(**options):
            return super().execute(*args, **options)
        if (why := unreachable()) is not None:
            raise CommandError(why)
        if self.check_migrations_first and (lacking := missing_migrations()) is not None:
            raise CommandError(lacking)
        try:
            return super().execute(*args, **options)
        except DatabaseError:
            # A missing table or column, most likely.
            lacking = missing_migrations()
            if lacking is None:
                raise
            raise CommandError(lacking) from None
