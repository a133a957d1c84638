"""The index of the search by a caller's number is added to a live audit log without holding
back its appends: concurrently on PostgreSQL (a plain CREATE INDEX blocks every INSERT while it
reads the whole table), plainly on SQLite, which has nothing else."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db import connection

pytestmark = pytest.mark.django_db


# Outside a transaction: SQLite's schema editor, which sqlmigrate opens, refuses to run in one.
@pytest.mark.django_db(transaction=True)
def test_the_index_is_built_concurrently_on_postgresql_and_plainly_elsewhere():
    out = io.StringIO()
    call_command("sqlmigrate", "audit", "0006", stdout=out)
    sql = [line for line in out.getvalue().splitlines() if line.startswith("CREATE")]
    concurrently = "CONCURRENTLY " if connection.vendor == "postgresql" else ""
    assert sql == [
        f'CREATE INDEX {concurrently}"audit_event_caller_idx" ON "audit_auditevent" '
        '("caller_digest");'
    ]


def test_the_migrated_audit_log_has_one_index_on_the_caller_digest():
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "audit_auditevent")
    on_digest = [
        name
        for name, info in constraints.items()
        if info["index"] and info["columns"] == ["caller_digest"]
    ]
    assert on_digest == ["audit_event_caller_idx"]
