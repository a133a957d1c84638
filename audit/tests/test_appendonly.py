import pytest
from django.db import DatabaseError, connection, transaction
from django.db.migrations.recorder import MigrationRecorder

from audit import appendonly
from audit.checks import check_audit_log_protected, check_sqlite_version
from audit.models import AppendOnlyError, AuditEvent
from conftest import TABLE, raw, triggers_lifted

pytestmark = pytest.mark.django_db

REFUSED = "append-only"


@pytest.fixture
def row():
    return AuditEvent.record(AuditEvent.Event.CALL_STARTED, AuditEvent.Outcome.INFO)


def refused(sql: str, params: list[object] | None = None) -> None:
    # A savepoint: on PostgreSQL an error would otherwise poison the test's transaction.
    with pytest.raises(DatabaseError, match=REFUSED), transaction.atomic():
        raw(sql, params)


def test_orm_queryset_update_is_refused_by_the_database(row):
    with pytest.raises(DatabaseError, match=REFUSED), transaction.atomic():
        AuditEvent.objects.filter(pk=row.pk).update(outcome="success")
    assert AuditEvent.objects.get(pk=row.pk).outcome == "info"


def test_orm_queryset_delete_is_refused_by_the_database(row):
    with pytest.raises(DatabaseError, match=REFUSED), transaction.atomic():
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.filter(pk=row.pk).exists()


def test_raw_update_is_refused(row):
    refused(f"UPDATE {TABLE} SET actor = %s WHERE id = %s", ["mallory", row.pk])  # noqa: S608


def test_raw_delete_is_refused(row):
    refused(f"DELETE FROM {TABLE} WHERE id = %s", [row.pk])  # noqa: S608
    refused(f"DELETE FROM {TABLE}")  # noqa: S608
    assert AuditEvent.objects.count() == 1


def test_truncate_of_a_non_empty_log_is_refused_on_postgresql(row):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no TRUNCATE; DELETE without WHERE is refused above")
    refused(f"TRUNCATE {TABLE}")


def test_model_save_of_an_existing_row_and_delete_say_why(row):
    row.outcome = "success"
    with pytest.raises(AppendOnlyError):
        row.save()
    with pytest.raises(AppendOnlyError):
        row.delete()


def test_inserts_still_work(row):
    AuditEvent.record(AuditEvent.Event.CALL_ENDED, AuditEvent.Outcome.INFO)
    assert AuditEvent.objects.count() == 2


def e009() -> list[str]:
    return [
        message.msg
        for message in check_audit_log_protected(databases=["default"])
        if message.id == "securegather.E009"
    ]


@pytest.mark.django_db
def test_the_check_finds_the_triggers_in_place():
    assert appendonly.missing_triggers(connection) == []
    assert e009() == []


@pytest.mark.django_db
def test_the_check_names_dropped_triggers():
    with triggers_lifted():
        expected = sorted(appendonly.TRIGGERS[connection.vendor])
        assert appendonly.missing_triggers(connection) == expected
        (message,) = e009()
        assert all(name in message for name in expected)
    assert e009() == []


@pytest.mark.django_db
def test_before_the_migration_that_makes_them_no_trigger_is_missing(monkeypatch):
    # migrate runs this check first: refusing there would stop the migration that fixes it.
    monkeypatch.setattr(MigrationRecorder, "applied_migrations", lambda self: {})
    with triggers_lifted():
        assert e009() == []


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_check_names_a_disabled_trigger():
    raw(f"ALTER TABLE {TABLE} DISABLE TRIGGER securegather_audit_no_update_delete")
    try:
        assert appendonly.missing_triggers(connection) == ["securegather_audit_no_update_delete"]
        assert len(e009()) == 1
    finally:
        raw(f"ALTER TABLE {TABLE} ENABLE TRIGGER securegather_audit_no_update_delete")


def test_e001_an_sqlite_too_old_for_returning(monkeypatch):
    monkeypatch.setattr("audit.checks.sqlite3.sqlite_version_info", (3, 34, 1))
    monkeypatch.setattr("audit.checks.sqlite3.sqlite_version", "3.34.1")
    expected = ["audit.E001"] if connection.vendor == "sqlite" else []
    assert [message.id for message in check_sqlite_version()] == expected
