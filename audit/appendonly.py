"""The database refuses UPDATE and DELETE on the audit table, whoever asks: the ORM, raw SQL or
a console (and, on PostgreSQL, TRUNCATE of a non-empty table). Triggers, created by migration
audit 0002; the functions here are also what tests use to lift them on purpose.
"""

from __future__ import annotations

from django.db.backends.base.base import BaseDatabaseWrapper

TABLE = "audit_auditevent"
# The migration that creates the triggers: before it has run, none are missing.
MIGRATION = ("audit", "0002_append_only")

# A constant table name, no input: S608 does not apply.
POSTGRESQL = [
    f"""
    CREATE OR REPLACE FUNCTION securegather_audit_append_only()
    RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'TRUNCATE' THEN
            -- Emptying an empty table destroys nothing; test databases are flushed this way.
            IF EXISTS (SELECT 1 FROM {TABLE}) THEN
                RAISE EXCEPTION '{TABLE} is append-only: TRUNCATE refused';
            END IF;
            RETURN NULL;
        END IF;
        RAISE EXCEPTION '{TABLE} is append-only: % refused', TG_OP;
    END
    $$
    """,  # noqa: S608
    f"""
    CREATE TRIGGER securegather_audit_no_update_delete BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION securegather_audit_append_only()
    """,
    f"""
    CREATE TRIGGER securegather_audit_no_truncate BEFORE TRUNCATE ON {TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION securegather_audit_append_only()
    """,
]
POSTGRESQL_REVERSE = [
    f"DROP TRIGGER IF EXISTS securegather_audit_no_truncate ON {TABLE}",
    f"DROP TRIGGER IF EXISTS securegather_audit_no_update_delete ON {TABLE}",
    "DROP FUNCTION IF EXISTS securegather_audit_append_only()",
]
SQLITE = [
    f"""
    CREATE TRIGGER securegather_audit_no_update BEFORE UPDATE ON {TABLE}
    BEGIN SELECT RAISE(ABORT, '{TABLE} is append-only: UPDATE refused'); END
    """,
    f"""
    CREATE TRIGGER securegather_audit_no_delete BEFORE DELETE ON {TABLE}
    BEGIN SELECT RAISE(ABORT, '{TABLE} is append-only: DELETE refused'); END
    """,
]
SQLITE_REVERSE = [
    "DROP TRIGGER IF EXISTS securegather_audit_no_update",
    "DROP TRIGGER IF EXISTS securegather_audit_no_delete",
]
STATEMENTS = {"postgresql": (POSTGRESQL, POSTGRESQL_REVERSE), "sqlite": (SQLITE, SQLITE_REVERSE)}
TRIGGERS = {
    "postgresql": {"securegather_audit_no_update_delete", "securegather_audit_no_truncate"},
    "sqlite": {"securegather_audit_no_update", "securegather_audit_no_delete"},
}
# PostgreSQL's enabled triggers: "O" fires in ordinary sessions, "A" always; "D" is disabled
# (ALTER TABLE ... DISABLE TRIGGER), "R" fires only under replication.
_ENABLED = {
    "postgresql": (
        "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND tgenabled IN ('O', 'A')"
    ),
    "sqlite": "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s",
}


def _run(connection: BaseDatabaseWrapper, which: int) -> None:
    if connection.vendor not in STATEMENTS:
        raise NotImplementedError(f"no append-only triggers for {connection.vendor}")
    with connection.cursor() as cursor:
        for statement in STATEMENTS[connection.vendor][which]:
            # No parameters: "%" in the PL/pgSQL body is RAISE's placeholder, not the driver's.
            cursor.execute(statement, None)


def create_triggers(connection: BaseDatabaseWrapper) -> None:
    _run(connection, 0)


def drop_triggers(connection: BaseDatabaseWrapper) -> None:
    _run(connection, 1)


def missing_triggers(connection: BaseDatabaseWrapper) -> list[str]:
    """The append-only triggers the audit table lacks, or has disabled: dropped by hand, the
    table takes UPDATE and DELETE again, which only a check of the audit chain would show."""
    if connection.vendor not in TRIGGERS:
        raise NotImplementedError(f"no append-only triggers for {connection.vendor}")
    with connection.cursor() as cursor:
        cursor.execute(_ENABLED[connection.vendor], [TABLE])
        present = {name for (name,) in cursor.fetchall()}
    return sorted(TRIGGERS[connection.vendor] - present)
