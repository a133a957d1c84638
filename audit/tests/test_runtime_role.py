"""The runtime role (audit.roles): a call runs as it, and it cannot undo the audit log.

Each test makes a role of its own in the test's transaction and takes it on with SET ROLE: the
connection then has that role's privileges and no others (the superuser's included), as a login
as that role would. As documented, the role can log in and owns neither the database nor the
schema (the suite's superuser, `postgres`, does), nor may it create anything in them. The
transaction's rollback takes the role and its grants away; the teardown drops them too, for a
run that stops halfway.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.test import override_settings

from audit import appendonly
from audit.models import AuditChainHead, AuditEvent, RefusalCount
from audit.role_checks import check_runtime_role
from audit.roles import quote
from calls.models import CallSession
from conftest import spoken
from keys.models import KeyRecord

pytestmark = pytest.mark.django_db

# PostgreSQL's words for a privilege missing ("permission denied for table ...") and for what
# only an owner may do ("must be owner of table ..."): not the triggers' "append-only".
REFUSED = r"permission denied|must be owner"


def run(sql: str, params: list[object] | None = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


@pytest.fixture
def role() -> Iterator[str]:
    """A fresh role that can log in, as the service's does (SET ROLE takes it on here)."""
    name = f"sg_roles_test_{secrets.token_hex(4)}"
    run(f"CREATE ROLE {quote(name)} LOGIN")
    yield name
    run("RESET ROLE")
    run(f"DROP OWNED BY {quote(name)}")
    run(f"DROP ROLE IF EXISTS {quote(name)}")


@pytest.fixture
def runtime(role: str) -> str:
    """``role``, granted the runtime privileges by the command, as the owner runs it."""
    # Migration audit 0002 makes the chain's head; a flushed test database has lost it, and the
    # runtime role cannot insert it (an append would).
    newest = AuditEvent.objects.order_by("-id").values_list("mac", flat=True).first()
    AuditChainHead.objects.bulk_create(
        [AuditChainHead(id=AuditChainHead.ID, mac=newest or "")], ignore_conflicts=True
    )
    call_command("grant_runtime_role", role, verbosity=0)
    return role


@contextmanager
def acting_as(role: str) -> Iterator[None]:
    # Outside any savepoint: a refused statement's rollback must not take the SET ROLE back.
    run(f"SET ROLE {quote(role)}")
    try:
        yield
    finally:
        run("RESET ROLE")


def refused(sql: str) -> None:
    # A savepoint: on PostgreSQL an error would otherwise poison the test's transaction.
    with pytest.raises(DatabaseError, match=REFUSED), transaction.atomic():
        run(sql)


def check_ids() -> list[str]:
    with override_settings(SECUREGATHER_DATABASE_ONE_ROLE=False):
        return [message.id for message in check_runtime_role(databases=["default"])]


# --- SQLite: no roles.


def test_the_command_refuses_sqlite():
    if connection.vendor != "sqlite":
        pytest.skip("the refusal is SQLite's; PostgreSQL is tested below")
    with pytest.raises(CommandError, match="need PostgreSQL"):
        call_command("grant_runtime_role", "securegather")


def test_the_check_has_nothing_to_say_on_sqlite():
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL's roles are tested below")
    assert check_ids() == []


# --- PostgreSQL: the grants.


def privileges(role: str, table: str) -> set[str]:
    kinds = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
    held = run(
        "SELECT kind FROM unnest(%s::text[]) AS kind WHERE has_table_privilege(%s, %s, kind)",
        [list(kinds), role, table],
    )
    return {kind for (kind,) in held}


def updatable_columns(role: str, table: str, kind: str = "UPDATE") -> set[str]:
    columns = run(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
        "AND NOT attisdropped AND has_column_privilege(%s, attrelid, attnum, %s)",
        [table, role, kind],
    )
    return {name for (name,) in columns}


def insertable_columns(role: str, table: str) -> set[str]:
    return updatable_columns(role, table, "INSERT")


def all_columns_but_id(table: str) -> set[str]:
    columns = run(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
        "AND NOT attisdropped AND attname <> 'id'",
        [table],
    )
    return {name for (name,) in columns}


@pytest.mark.postgres
def test_the_runtime_role_holds_exactly_what_serving_needs(runtime):
    # INSERT on every column but id (has_table_privilege counts only a grant on the table).
    for table in ("audit_auditevent", "keys_keyrecord", "audit_refusalcount"):
        assert insertable_columns(runtime, table) == all_columns_but_id(table), table
    assert privileges(runtime, "audit_auditevent") == {"SELECT"}
    assert updatable_columns(runtime, "audit_auditevent") == set()
    assert privileges(runtime, "audit_auditchainhead") == {"SELECT"}
    assert updatable_columns(runtime, "audit_auditchainhead") == {"mac"}
    assert insertable_columns(runtime, "audit_auditchainhead") == set()
    assert privileges(runtime, "keys_keyrecord") == {"SELECT"}
    assert updatable_columns(runtime, "keys_keyrecord") == {"sealed_count"}
    assert privileges(runtime, "audit_refusalcount") == {"SELECT", "DELETE"}
    assert updatable_columns(runtime, "audit_refusalcount") == {"count"}
    assert privileges(runtime, "django_migrations") == {"SELECT"}
    # The documented setup: it owns neither the database nor the schema, and creates nothing.
    ((owns_database, creates_in_database),) = run(
        "SELECT pg_has_role(%s, datdba, 'MEMBER'), has_database_privilege(%s, oid, 'CREATE') "
        "FROM pg_database WHERE datname = current_database()",
        [runtime, runtime],
    )
    ((owns_schema, creates_in_schema),) = run(
        "SELECT pg_has_role(%s, nspowner, 'MEMBER'), has_schema_privilege(%s, oid, 'CREATE') "
        "FROM pg_namespace WHERE nspname = 'public'",
        [runtime, runtime],
    )
    assert (owns_database, creates_in_database, owns_schema, creates_in_schema) == (False,) * 4
    assert run("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", [runtime]) == [(True,)]
    everyday = {"SELECT", "INSERT", "UPDATE", "DELETE"}
    for table in ("calls_callsession", "accounts_account", "django_session", "axes_accessattempt"):
        assert privileges(runtime, table) == everyday, table


@pytest.mark.postgres
def test_a_second_run_revokes_what_was_added_and_grants_new_tables(runtime):
    run(f"GRANT UPDATE, DELETE, TRUNCATE ON audit_auditevent TO {quote(runtime)}")
    run(f"GRANT UPDATE (check_value) ON keys_keyrecord TO {quote(runtime)}")
    run(f"GRANT INSERT ON audit_auditevent TO {quote(runtime)}")
    run(f"GRANT CREATE ON SCHEMA public TO {quote(runtime)}")
    run("CREATE TABLE sg_roles_later (id serial PRIMARY KEY)")  # as a later migration would
    call_command("grant_runtime_role", runtime, verbosity=0)
    assert privileges(runtime, "audit_auditevent") == {"SELECT"}
    assert insertable_columns(runtime, "audit_auditevent") == all_columns_but_id("audit_auditevent")
    assert updatable_columns(runtime, "keys_keyrecord") == {"sealed_count"}
    assert privileges(runtime, "sg_roles_later") == {"SELECT", "INSERT", "UPDATE", "DELETE"}
    sequence = run("SELECT has_sequence_privilege(%s, 'sg_roles_later_id_seq', 'USAGE')", [runtime])
    assert sequence == [(True,)]
    assert run("SELECT has_schema_privilege(%s, 'public', 'CREATE')", [runtime]) == [(False,)]


@pytest.mark.postgres
def test_the_command_refuses_a_role_that_could_undo_the_log(role):
    with pytest.raises(CommandError, match="There is no role"):
        call_command("grant_runtime_role", role + "_missing")
    with pytest.raises(CommandError, match="is a superuser"):
        call_command("grant_runtime_role", run("SELECT current_user")[0][0])
    run("CREATE TABLE sg_roles_owned (id int)")
    run(f"ALTER TABLE sg_roles_owned OWNER TO {quote(role)}")
    with pytest.raises(CommandError, match="owns, or can become the owner of, sg_roles_owned"):
        call_command("grant_runtime_role", role)


@contextmanager
def foothold(role: str, kind: str) -> Iterator[None]:
    """``role`` owns, or may create in, the schema or the database; undone before the role's
    teardown, whose DROP OWNED BY would drop the schema (and cannot drop a database)."""
    database = quote(connection.settings_dict["NAME"])
    ((schema_owner, database_owner),) = run(
        "SELECT (SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'public'), "
        "(SELECT datdba::regrole::text FROM pg_database WHERE datname = current_database())"
    )
    give, take = {
        "owns the schema": (
            f"ALTER SCHEMA public OWNER TO {quote(role)}",
            f"ALTER SCHEMA public OWNER TO {schema_owner}",
        ),
        "owns the database": (
            f"ALTER DATABASE {database} OWNER TO {quote(role)}",
            f"ALTER DATABASE {database} OWNER TO {database_owner}",
        ),
        "can CREATE in the schema": (
            "GRANT CREATE ON SCHEMA public TO PUBLIC",
            "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
        ),
        "can CREATE in the database": (
            f"GRANT CREATE ON DATABASE {database} TO {quote(role)}",
            f"REVOKE CREATE ON DATABASE {database} FROM {quote(role)}",
        ),
    }[kind]
    run(give)
    try:
        yield
    finally:
        run("RESET ROLE")
        run(take)


FOOTHOLDS = [
    "owns the schema",
    "owns the database",
    "can CREATE in the schema",
    "can CREATE in the database",
]


@pytest.mark.postgres
@pytest.mark.parametrize("kind", FOOTHOLDS)
def test_the_command_refuses_a_role_that_owns_or_creates_in_the_schema_or_database(role, kind):
    # CREATE in the schema is granted to PUBLIC here, as PostgreSQL 14 did: the REVOKE from the
    # role alone cannot take it away.
    with foothold(role, kind), pytest.raises(CommandError, match=kind):
        call_command("grant_runtime_role", role)


@pytest.mark.postgres
@pytest.mark.parametrize("kind", FOOTHOLDS)
def test_a_role_that_owns_or_creates_in_the_schema_or_database_fails_the_check(role, kind):
    with (
        foothold(role, kind),
        acting_as(role),
        override_settings(SECUREGATHER_DATABASE_ONE_ROLE=False),
    ):
        (error,) = check_runtime_role(databases=["default"])
    assert error.id == "audit.E002"
    assert kind in error.msg


@pytest.mark.postgres
def test_the_command_takes_create_on_the_schema_from_the_role(role):
    run(f"GRANT CREATE ON SCHEMA public TO {quote(role)}")
    call_command("grant_runtime_role", role, verbosity=0)
    assert run("SELECT has_schema_privilege(%s, 'public', 'CREATE')", [role]) == [(False,)]


@pytest.mark.postgres
def test_the_command_runs_only_as_the_tables_owner(runtime):
    with acting_as(runtime), pytest.raises(CommandError, match="Run this as the tables' owner"):
        call_command("grant_runtime_role", runtime)


# --- PostgreSQL: a call, and the attacks, as the runtime role.


@pytest.mark.postgres
def test_a_whole_call_runs_as_the_runtime_role(runtime, call, demo_account):
    before = AuditEvent.objects.count()
    with acting_as(runtime):
        call.start()
        call.card("1234")
        pin = call.pin("4321")
        call.status()
        AuditEvent.record(AuditEvent.Event.AUDIT_VERIFIED, AuditEvent.Outcome.INFO)
        KeyRecord.objects.update(sealed_count=1)  # the one column it may change
    assert spoken(pin).startswith("Thank you. Your account number is AC12345678")
    session = CallSession.objects.get()
    assert (session.state, session.outcome) == ("finished", "verified")
    events = AuditEvent.objects.filter(pk__gt=0).order_by("id").values_list("event", flat=True)
    assert AuditEvent.Event.VERIFIED in events[before:]
    assert AuditChainHead.objects.get().mac == AuditEvent.objects.order_by("-id").first().mac


# A row at the id the sequence hands out next (the newest row's, id and MAC changed): the next
# append would fail with a duplicate key.
PLANT_AUDIT_ROW = (
    "INSERT INTO audit_auditevent SELECT planted.* "
    "FROM (SELECT e FROM audit_auditevent e ORDER BY e.id DESC LIMIT 1) AS newest, "
    "LATERAL jsonb_populate_record(newest.e, jsonb_build_object('id', "
    "nextval(pg_get_serial_sequence('audit_auditevent', 'id')) + 1, 'mac', 'planted')) AS planted"
)

ATTACKS = [
    PLANT_AUDIT_ROW,
    "INSERT INTO keys_keyrecord (id, kid, check_value, first_seen, sealed_count) VALUES ("
    "nextval(pg_get_serial_sequence('keys_keyrecord', 'id')) + 1, 'planted', 'x', now(), 0)",
    "INSERT INTO audit_refusalcount (id, source, minute, event, count) VALUES ("
    "nextval(pg_get_serial_sequence('audit_refusalcount', 'id')) + 1, '', now(), 'x', 0)",
    "UPDATE audit_refusalcount SET id = id + 1000",
    "DROP SCHEMA public CASCADE",
    "CREATE TABLE public.sg_roles_planted (id int)",
    "CREATE SCHEMA sg_roles_planted",
    "ALTER TABLE audit_auditevent DISABLE TRIGGER USER",
    "DROP TRIGGER securegather_audit_no_update_delete ON audit_auditevent",
    "UPDATE audit_auditevent SET actor = 'mallory'",
    "DELETE FROM audit_auditevent WHERE id >= (SELECT max(id) - 1 FROM audit_auditevent)",
    "DELETE FROM audit_auditevent",
    "TRUNCATE audit_auditevent",
    "DROP TABLE audit_auditevent CASCADE",
    "UPDATE audit_auditchainhead SET id = 2",
    "DELETE FROM audit_auditchainhead",
    "UPDATE keys_keyrecord SET check_value = 'forged'",
    "UPDATE keys_keyrecord SET kid = 'forged'",
    "DELETE FROM keys_keyrecord",
    "ALTER TABLE keys_keyrecord DISABLE TRIGGER ALL",
]


@pytest.mark.postgres
@pytest.mark.parametrize("attack", ATTACKS)
def test_the_runtime_role_cannot_rewrite_cut_or_wipe_the_log(runtime, attack):
    for _ in range(3):
        AuditEvent.record(AuditEvent.Event.CALL_STARTED, AuditEvent.Outcome.INFO)
    rows = list(AuditEvent.objects.values_list("id", "actor", "mac"))
    keys = list(KeyRecord.objects.values_list("kid", "check_value"))
    with acting_as(runtime):
        refused(attack)
    assert list(AuditEvent.objects.values_list("id", "actor", "mac")) == rows
    assert list(KeyRecord.objects.values_list("kid", "check_value")) == keys
    assert appendonly.missing_triggers(connection) == []


@pytest.mark.postgres
def test_a_row_with_a_chosen_id_would_block_the_next_append():
    # As the owner, who may: the attack the runtime role's INSERT on columns but id refuses.
    AuditEvent.record(AuditEvent.Event.CALL_STARTED, AuditEvent.Outcome.INFO)
    run(PLANT_AUDIT_ROW)
    with pytest.raises(IntegrityError, match="duplicate key"), transaction.atomic():
        AuditEvent.record(AuditEvent.Event.CALL_STARTED, AuditEvent.Outcome.INFO)


@pytest.mark.postgres
def test_the_runtime_role_still_appends_and_counts_without_choosing_ids(runtime):
    AuditEvent.record(AuditEvent.Event.CALL_STARTED, AuditEvent.Outcome.INFO)
    newest = AuditEvent.objects.order_by("-id").first()
    with acting_as(runtime):
        refused(PLANT_AUDIT_ROW)
        AuditEvent.record(AuditEvent.Event.AUDIT_VERIFIED, AuditEvent.Outcome.INFO)
        KeyRecord.objects.bulk_create(
            [KeyRecord(kid="sg-roles-test", check_value="0" * 16)], ignore_conflicts=True
        )
        assert RefusalCount.first_this_minute("192.0.2.1", AuditEvent.Event.INVALID_INPUT)
        assert not RefusalCount.first_this_minute("192.0.2.1", AuditEvent.Event.INVALID_INPUT)
    appended = AuditEvent.objects.filter(id__gt=newest.id).order_by("id")
    assert [event.event for event in appended][:1] == [AuditEvent.Event.AUDIT_VERIFIED]
    assert appended.first().prev_mac == newest.mac
    assert KeyRecord.objects.filter(kid="sg-roles-test").exists()
    assert RefusalCount.objects.get().count == 1


# --- PostgreSQL: the check (audit.E002, audit.E003).


@pytest.mark.postgres
def test_the_owner_fails_the_check():
    # The suite's superuser owns every table, and holds every privilege.
    assert check_ids() == ["audit.E002", "audit.E003"]


@pytest.mark.postgres
def test_the_runtime_role_passes_the_check(runtime):
    with acting_as(runtime):
        assert check_ids() == []


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("extra", "held"),
    [
        ("UPDATE (actor)", "UPDATE"),
        ("DELETE", "DELETE"),
        ("TRUNCATE", "TRUNCATE"),
        ("TRIGGER", "TRIGGER"),
        ("INSERT (id)", "INSERT (id)"),
        ("INSERT", "INSERT (id)"),
    ],
)
def test_a_runtime_role_with_more_on_the_audit_table_fails_the_check(runtime, extra, held):
    run(f"GRANT {extra} ON audit_auditevent TO {quote(runtime)}")
    with override_settings(SECUREGATHER_DATABASE_ONE_ROLE=False), acting_as(runtime):
        (error,) = check_runtime_role(databases=["default"])
    assert error.id == "audit.E003"
    assert f"holds {held} on audit_auditevent" in error.msg


@pytest.mark.postgres
def test_a_runtime_role_that_owns_a_table_fails_the_check(runtime):
    run("CREATE TABLE sg_roles_owned (id int)")
    run(f"ALTER TABLE sg_roles_owned OWNER TO {quote(runtime)}")
    with acting_as(runtime):
        assert check_ids() == ["audit.E002"]


@pytest.mark.postgres
def test_one_role_databases_turn_the_check_off():
    with override_settings(SECUREGATHER_DATABASE_ONE_ROLE=True):
        assert check_runtime_role(databases=["default"]) == []
    # And it runs only when asked to look at the database.
    with override_settings(SECUREGATHER_DATABASE_ONE_ROLE=False):
        assert check_runtime_role(databases=None) == []
