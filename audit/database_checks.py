"""The database's own keeping of what it is sent: PostgreSQL's server log and the SQLite file.

- audit.W002 (``check --database default``): PostgreSQL runs without ``log_error_verbosity =
  terse``, so an error's DETAIL in its log quotes the values of the row that failed (``Key
  (caller)=(+15005550006) already exists``).
- A SQLite database file is made readable by its owner only (0600) as a connection opens it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from typing import Any

from django.core.checks import CheckMessage, Tags, Warning, register
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created
from django.dispatch import receiver

from keys.database import quiet_when_unreachable

# Owner read and write, nothing for group or others.
FILE_MODE = 0o600


def error_verbosity(connection: BaseDatabaseWrapper) -> str:
    """PostgreSQL's log_error_verbosity: SHOW reads it for any role."""
    with connection.cursor() as cursor:
        cursor.execute("SHOW log_error_verbosity")
        row = cursor.fetchone()
    return str(row[0]).lower() if row else ""


@register(Tags.database)
@quiet_when_unreachable
def check_server_log_verbosity(
    app_configs: Any = None, databases: Sequence[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Runs with ``check --database <alias>``, for each PostgreSQL database named."""
    warnings: list[CheckMessage] = []
    for alias in databases or ():
        warnings.extend(server_log_warnings(connections[alias], alias))
    return warnings


def server_log_warnings(connection: BaseDatabaseWrapper, alias: str) -> list[CheckMessage]:
    """audit.W002 for a PostgreSQL server whose log_error_verbosity is not terse."""
    if connection.vendor != "postgresql":
        return []
    verbosity = error_verbosity(connection)
    if verbosity == "terse":
        return []
    return [
        Warning(
            f"PostgreSQL runs with log_error_verbosity = {verbosity} (database {alias!r}): "
            "the DETAIL of an error in its log quotes the values it failed on, a caller's "
            "number among them.",
            hint="Set log_error_verbosity = terse in postgresql.conf (docs/deployment.md, "
            '"PostgreSQL\'s server log").',
            id="audit.W002",
        )
    ]


@receiver(connection_created, dispatch_uid="audit.database_checks.sqlite_file_mode")
def make_sqlite_file_private(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    """Make a SQLite database file 0600: it holds sealed values and the audit log, and SQLite
    creates it with the process's umask (often 0644, readable by every local user)."""
    name = str(connection.settings_dict["NAME"])
    if connection.vendor != "sqlite" or name == ":memory:" or "mode=memory" in name:
        return
    # SQLite creates the file as it connects, before this runs, and its -wal and -shm files take
    # this file's mode when SQLite creates them; those left by a run before this one keep theirs.
    for path in (name, f"{name}-wal", f"{name}-shm"):
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
        except FileNotFoundError:
            continue
        if mode != FILE_MODE:
            os.chmod(path, FILE_MODE)
