"""The database roles on PostgreSQL: an owner, which owns every table and runs migrate, and the
runtime role the service logs in as, which can append to the audit log but not alter, disable,
truncate, update or delete it (docs/deployment.md, "Database roles").

The append-only triggers (audit.appendonly) refuse changes whoever asks, but a table's owner can
disable or drop them: they hold only against a login that owns nothing.
"""

from __future__ import annotations

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper

from audit.appendonly import TABLE as AUDIT_TABLE

CHAIN_HEAD = "audit_auditchainhead"
KEY_RECORDS = "keys_keyrecord"
MIGRATIONS = "django_migrations"

# What the runtime role holds on these tables; every other table of the project gets EVERYDAY.
# An append inserts rows and moves the chain's head (its SELECT ... FOR UPDATE needs UPDATE on a
# column, which UPDATE (mac) is); a process inserts the key ids it uses and adds to their seal
# counts, and must never change which bytes an id stands for (check_value) or delete one.
PRIVILEGES = {
    AUDIT_TABLE: "SELECT, INSERT",
    CHAIN_HEAD: "SELECT, UPDATE (mac)",
    KEY_RECORDS: "SELECT, INSERT, UPDATE (sealed_count)",
    MIGRATIONS: "SELECT",
}
EVERYDAY = "SELECT, INSERT, UPDATE, DELETE"
# Whose privileges PUBLIC must not widen: anything granted to PUBLIC every role holds too.
PROTECTED = (AUDIT_TABLE, CHAIN_HEAD, KEY_RECORDS)
# What a role may do to the audit table beyond SELECT and INSERT, each enough to lose rows:
# has_any_column_privilege counts a grant on one column as well as one on the table.
EXCESS_ON_AUDIT = {
    "UPDATE": "has_any_column_privilege(current_user, %s, 'UPDATE')",
    "DELETE": "has_table_privilege(current_user, %s, 'DELETE')",
    "TRUNCATE": "has_table_privilege(current_user, %s, 'TRUNCATE')",
    "TRIGGER": "has_table_privilege(current_user, %s, 'TRIGGER')",
    "REFERENCES": "has_any_column_privilege(current_user, %s, 'REFERENCES')",
    "ownership": (
        "pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = %s::regclass), "
        "'MEMBER')"
    ),
}

# The project's tables: those in the schemas of the search path (current_schemas(false) leaves
# out pg_catalog and temporary schemas), as Django sees them. MEMBER, not USAGE: a role that can
# SET ROLE to the owner can do all the owner can.
_TABLES = """
    SELECT c.relname, pg_get_userbyid(c.relowner), pg_has_role(%s, c.relowner, 'MEMBER')
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(current_schemas(false))
    ORDER BY c.relname
"""
# Each table's id sequence: an identity column's ('i') or a serial column's ('a').
_SEQUENCES = """
    SELECT s.relname, t.relname
    FROM pg_depend d
    JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
    JOIN pg_class t ON t.oid = d.refobjid
    JOIN pg_namespace n ON n.oid = t.relnamespace
    WHERE d.deptype IN ('a', 'i') AND n.nspname = ANY(current_schemas(false))
    ORDER BY s.relname
"""


class RoleError(Exception):
    """The roles cannot be set up as asked: say why, and what to do."""


def quote(name: str) -> str:
    """``name`` as a PostgreSQL identifier, whatever it holds."""
    return '"' + name.replace('"', '""') + '"'


def _tables(cursor: CursorWrapper, role: str) -> list[tuple[str, str, bool]]:
    """(table, owner, whether ``role`` owns it or can become its owner) for each project table."""
    cursor.execute(_TABLES, [role])
    return [(name, owner, bool(owns)) for name, owner, owns in cursor.fetchall()]


def runtime_statements(tables: list[str], sequences: list[tuple[str, str]], role: str) -> list[str]:
    """The REVOKE and GRANT statements that leave ``role`` exactly its privileges."""
    grantee = quote(role)
    statements = []
    for table in tables:
        # Column grants go with the table's REVOKE ALL, so a run starts from nothing each time.
        statements.append(f"REVOKE ALL ON TABLE {quote(table)} FROM {grantee}")
        if table in PROTECTED:
            statements.append(f"REVOKE ALL ON TABLE {quote(table)} FROM PUBLIC")
        privileges = PRIVILEGES.get(table, EVERYDAY)
        statements.append(f"GRANT {privileges} ON TABLE {quote(table)} TO {grantee}")
    for sequence, table in sequences:
        statements.append(f"REVOKE ALL ON SEQUENCE {quote(sequence)} FROM {grantee}")
        if "INSERT" in PRIVILEGES.get(table, EVERYDAY):
            # USAGE: nextval() for new ids; never setval(), which needs UPDATE.
            statements.append(f"GRANT USAGE ON SEQUENCE {quote(sequence)} TO {grantee}")
    return statements


def grant_runtime_role(connection: BaseDatabaseWrapper, role: str) -> list[str]:
    """Grant ``role`` what the service needs on every project table, and nothing more; return the
    statements run. Run as the tables' owner, after each migrate: new tables get their grants.

    One transaction: no moment passes with the role holding less, or more, than it should.
    """
    if connection.vendor != "postgresql":
        raise RoleError(
            f"Database roles need PostgreSQL; this database is {connection.vendor}, where any "
            "process that can open the file can change it."
        )
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [role])
        found = cursor.fetchone()
        if found is None:
            raise RoleError(
                f"There is no role {role!r}: create it first (CREATE ROLE {quote(role)} LOGIN "
                "PASSWORD '...'), as a superuser."
            )
        if found[0]:
            raise RoleError(f"{role!r} is a superuser: it can do anything to any table.")
        if owned := [name for name, _, owns in _tables(cursor, role) if owns]:
            raise RoleError(
                f"{role!r} owns, or can become the owner of, {', '.join(owned)}: an owner can "
                "disable the audit table's triggers. The runtime role must own nothing."
            )
        cursor.execute("SELECT current_user")
        (me,) = cursor.fetchone()
        tables = _tables(cursor, me)
        if foreign := [(name, owner) for name, owner, mine in tables if not mine]:
            name, owner = foreign[0]
            raise RoleError(
                f"Run this as the tables' owner: {me!r} cannot grant on {len(foreign)} table(s), "
                f"{name} (owned by {owner}) the first."
            )
        cursor.execute(_SEQUENCES)
        sequences = [(sequence, table) for sequence, table in cursor.fetchall()]
        statements = runtime_statements([name for name, _, _ in tables], sequences, role)
        for statement in statements:
            cursor.execute(statement)
    return statements


def owned_tables(connection: BaseDatabaseWrapper) -> list[str]:
    """The project tables the connection's role owns, or can become the owner of."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        (me,) = cursor.fetchone()
        return [name for name, _, owns in _tables(cursor, me) if owns]


def excess_audit_privileges(connection: BaseDatabaseWrapper) -> list[str]:
    """What the connection's role may do to the audit table beyond SELECT and INSERT."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [AUDIT_TABLE])
        (exists,) = cursor.fetchone()
        if not exists:
            return []  # not migrated yet
        columns = ", ".join(EXCESS_ON_AUDIT.values())
        cursor.execute(f"SELECT {columns}", [AUDIT_TABLE] * len(EXCESS_ON_AUDIT))
        held = cursor.fetchone()
    return [name for name, has in zip(EXCESS_ON_AUDIT, held, strict=True) if has]
