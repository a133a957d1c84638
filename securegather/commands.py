"""The base of management commands that need the database."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import OperationalError, connection


class DatabaseCommand(BaseCommand):
    """A command that reads or writes the database: when it cannot connect, it says so in one
    line, with what to check, instead of a driver's traceback."""

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
        return super().execute(*args, **options)
