"""The runtime role (audit.roles): a call runs as it, and it cannot undo the audit log.

Each test makes a role of its own in the test's transaction and takes it on with SET ROLE: the
connection then has that role's privileges and no others (the superuser's included), as a login
as that role would. The transaction's rollback takes the role and its grants away; the teardown
drops them too, for a run that stops halfway.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.test import override_settings

from audit import appendonly
from audit.models import AuditChainHead, AuditEvent
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
    """A fresh role, no login needed: SET ROLE takes it on."""
    name = f"sg_roles_test_{secrets.token_hex(4)}"
    run(f"CREATE ROLE {quote(name)}")
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


def updatable_columns(role: str, table: str) -> set[str]:
    columns = run(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
        "AND NOT attisdropped AND has_column_privilege(%s, attrelid, attnum, 'UPDATE')",
        [table, role],
    )
    return {name for (name,) in columns}


@pytest.mark.postgres
def test_the_runtime_role_holds_exactly_what_serving_needs(runtime):
    assert privileges(runtime, "audit_auditevent") == {"SELECT", "INSERT"}
    assert updatable_columns(runtime, "audit_auditevent") == set()
    assert privileges(runtime, "audit_auditchainhead") == {"SELECT"}
    assert updatable_columns(runtime, "audit_auditchainhead") == {"mac"}
    assert privileges(runtime, "keys_keyrecord") == {"SELECT", "INSERT"}
    assert updatable_columns(runtime, "keys_keyrecord") == {"sealed_count"}
    assert privileges(runtime, "django_migrations") == {"SELECT"}
    everyday = {"SELECT", "INSERT", "UPDATE", "DELETE"}
    for table in ("calls_callsession", "accounts_account", "django_session", "axes_accessattempt"):
        assert privileges(runtime, table) == everyday, table


@pytest.mark.postgres
def test_a_second_run_revokes_what_was_added_and_grants_new_tables(runtime):
    run(f"GRANT UPDATE, DELETE, TRUNCATE ON audit_auditevent TO {quote(runtime)}")
    run(f"GRANT UPDATE (check_value) ON keys_keyrecord TO {quote(runtime)}")
    run("CREATE TABLE sg_roles_later (id serial PRIMARY KEY)")  # as a later migration would
    call_command("grant_runtime_role", runtime, verbosity=0)
    assert privileges(runtime, "audit_auditevent") == {"SELECT", "INSERT"}
    assert updatable_columns(runtime, "keys_keyrecord") == {"sealed_count"}
    assert privileges(runtime, "sg_roles_later") == {"SELECT", "INSERT", "UPDATE", "DELETE"}
    sequence = run("SELECT has_sequence_privilege(%s, 'sg_roles_later_id_seq', 'USAGE')", [runtime])
    assert sequence == [(True,)]


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


ATTACKS = [
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
@pytest.mark.parametrize("extra", ["UPDATE (actor)", "DELETE", "TRUNCATE", "TRIGGER"])
def test_a_runtime_role_with_more_on_the_audit_table_fails_the_check(runtime, extra):
    run(f"GRANT {extra} ON audit_auditevent TO {quote(runtime)}")
    with override_settings(SECUREGATHER_DATABASE_ONE_ROLE=False), acting_as(runtime):
        (error,) = check_runtime_role(databases=["default"])
    assert error.id == "audit.E003"
    assert f"holds {extra.split()[0]} on audit_auditevent" in error.msg


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
