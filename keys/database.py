"""What a database lacks for this code (a connection, its tables, migrations), each said in one
line with what to do. The commands (keys.commands), the system checks (keys.checks) and manage.py
say it alike, instead of a driver's traceback."""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Sequence
from typing import Any

from django.core.checks import CheckMessage
from django.core.management import call_command
from django.db import DEFAULT_DB_ALIAS, DatabaseError, OperationalError, connections

# Where Django keeps the migrations a database has (docs: "Migrations", "django_migrations").
MIGRATIONS_TABLE = "django_migrations"

NO_TABLES = (
    "The database has no tables: run `manage.py migrate`, or check that DATABASE_URL names the "
    "service's database."
)


def unreachable(alias: str = DEFAULT_DB_ALIAS) -> str | None:
    """Why the database cannot be connected to, in a line that says what to check; None when it
    can."""
    try:
        connections[alias].ensure_connection()
    except OperationalError as exc:
        # The driver's first line names the host or file and why; never a password.
        text = str(exc).strip()
        reason = text.splitlines()[0].rstrip(".") if text else type(exc).__name__
        return (
            f"Cannot connect to the database: {reason}. Check that it is running and that "
            "DATABASE_URL names it."
        )
    return None


def unapplied_migrations(alias: str = DEFAULT_DB_ALIAS) -> list[str]:
    """The migrations this database still lacks, as "app.name", first to apply first."""
    plan = io.StringIO()
    # `showmigrations --plan` lists every migration in the order `migrate` applies them, "[X]"
    # before those applied and "[ ]" before the others.
    call_command("showmigrations", "--plan", database=alias, stdout=plan, no_color=True)
    return [line[3:].strip() for line in plan.getvalue().splitlines() if line.startswith("[ ]")]


def missing_migrations(alias: str = DEFAULT_DB_ALIAS) -> str | None:
    """What the database lacks for this code, in a line that says what to do; None when it
    lacks nothing, or cannot be asked: a connection lost mid-command fails the asking too
    ("the connection is closed"), and the error that closed it says why."""
    try:
        if MIGRATIONS_TABLE not in connections[alias].introspection.table_names():
            # SQLite makes a new, empty file for a path that names none: a mistyped
            # DATABASE_URL lands here too.
            return NO_TABLES
        missing = unapplied_migrations(alias)
    except DatabaseError:
        return None
    if not missing:
        return None
    return (
        f"The database lacks {len(missing)} migration(s), {missing[0]} first: run "
        "`manage.py migrate`."
    )


Check = Callable[..., list[CheckMessage]]


def quiet_when_unreachable(check: Check) -> Check:
    """A database check that reports nothing when a database it was given cannot be connected
    to: securegather.E012 says so once, in a line, where the check would raise the driver's
    error. Any other database error is raised as it was."""

    @functools.wraps(check)
    def wrapper(*args: Any, databases: Sequence[str] | None = None, **kwargs: Any) -> Any:
        try:
            return check(*args, databases=databases, **kwargs)
        except DatabaseError:
            if any(unreachable(alias) for alias in databases or ()):
                return []
            raise

    return wrapper
