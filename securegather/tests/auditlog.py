"""Helpers for tests that tamper with the audit log the way someone with database access would."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

from audit import appendonly
from audit.models import AuditEvent


@contextmanager
def triggers_lifted() -> Iterator[None]:
    """Drop the append-only triggers (as a database owner could), then put them back."""
    appendonly.drop_triggers(connection)
    try:
        yield
    finally:
        appendonly.create_triggers(connection)


def raw(sql: str, params: list[object] | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


TABLE = AuditEvent._meta.db_table
