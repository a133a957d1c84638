"""manage.py migrate records each run that changes the schema, under the production settings."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from django.core.management import call_command

from audit.models import AuditEvent
from conftest import manage


def rows(tmp_path: Path) -> list[tuple[str, str, str, str, dict]]:
    with closing(sqlite3.connect(tmp_path / "db.sqlite3")) as db:
        query = "SELECT event, outcome, actor, channel, detail FROM audit_auditevent"
        return [(*row[:4], json.loads(row[4])) for row in db.execute(f"{query} ORDER BY id")]


def test_each_run_that_changes_the_schema_is_a_row_naming_its_migrations(tmp_path):
    assert manage(tmp_path, "migrate", "--verbosity", "0").returncode == 0
    ((event, outcome, actor, channel, detail),) = rows(tmp_path)
    assert (event, outcome, channel, detail["unapplied"]) == ("migrated", "success", "system", [])
    assert actor and actor != "twilio"  # the OS user who ran it
    assert {"accounts.0001_initial", "audit.0002_append_only"} <= set(detail["applied"])
    assert manage(tmp_path, "migrate", "calls", "zero", "--verbosity", "0").returncode == 0
    assert manage(tmp_path, "migrate", "--verbosity", "0").returncode == 0
    calls = ["calls.0001_initial"]
    assert [detail for *_, detail in rows(tmp_path)[1:]] == [
        {"applied": [], "unapplied": calls},
        {"applied": calls, "unapplied": []},
    ]
    assert manage(tmp_path, "verify_audit_log").returncode == 0


def test_a_run_that_changes_nothing_writes_nothing(tmp_path):
    assert manage(tmp_path, "migrate", "--verbosity", "0").returncode == 0
    assert manage(tmp_path, "migrate", "--verbosity", "0").returncode == 0
    assert manage(tmp_path, "migrate", "--plan").returncode == 0
    assert len(rows(tmp_path)) == 1


def test_a_faked_run_says_so(tmp_path):
    assert manage(tmp_path, "migrate", "--verbosity", "0").returncode == 0
    assert (
        manage(tmp_path, "migrate", "calls", "zero", "--fake", "--verbosity", "0").returncode == 0
    )
    assert rows(tmp_path)[-1][4]["fake"] is True


@pytest.mark.django_db
def test_a_run_that_stops_partway_is_a_failure_row_naming_what_it_changed(settings, monkeypatch):
    from django.core.management.commands import migrate as django_migrate

    from audit.management.commands import migrate

    settings.SECUREGATHER_AUDIT_MIGRATE = True
    states = iter([{"calls.0001_initial"}, {"calls.0001_initial", "calls.0002_more"}])
    monkeypatch.setattr(migrate, "applied", lambda database: next(states))

    def fails_after_one(self, *args, **options):
        raise RuntimeError("migration failed")

    monkeypatch.setattr(django_migrate.Command, "handle", fails_after_one)
    with pytest.raises(RuntimeError, match="migration failed"):
        call_command("migrate", verbosity=0)
    row = AuditEvent.objects.get()
    assert (row.event, row.outcome, row.detail) == (
        "migrated",
        "failure",
        {"applied": ["calls.0002_more"], "unapplied": []},
    )


@pytest.mark.django_db
def test_a_run_whose_database_is_gone_ends_on_its_own_error(settings, monkeypatch):
    from django.core.management.commands import migrate as django_migrate
    from django.db import OperationalError

    from audit.management.commands import migrate

    settings.SECUREGATHER_AUDIT_MIGRATE = True
    answers = iter([{"calls.0001_initial"}])

    def applied(database):
        for answer in answers:
            return answer
        raise OperationalError("the connection is closed")

    def fails(self, *args, **options):
        raise OperationalError("terminating connection due to administrator command")

    monkeypatch.setattr(migrate, "applied", applied)
    monkeypatch.setattr(django_migrate.Command, "handle", fails)
    with pytest.raises(OperationalError, match="terminating connection"):
        call_command("migrate", verbosity=0)
    assert not AuditEvent.objects.exists()


def test_a_run_back_past_the_audit_tables_writes_none_and_the_way_forward_is_one(tmp_path):
    # With the audit app unapplied there is no audit table to write to.
    assert manage(tmp_path, "migrate", "--verbosity", "0").returncode == 0
    back = manage(tmp_path, "migrate", "audit", "zero", "--verbosity", "0")
    assert (back.returncode, back.stderr) == (0, "")
    assert manage(tmp_path, "migrate", "--verbosity", "0").returncode == 0
    ((*_, forward),) = rows(tmp_path)
    assert forward["applied"] == ["audit.0001_initial", "audit.0002_append_only"]
    assert manage(tmp_path, "verify_audit_log").returncode == 0


def test_a_pruned_migration_is_named_as_pruned_not_unapplied(tmp_path):
    # --prune forgets migrations deleted from disk (replaced by a squashed one): it changes no
    # schema, and only the record of what was applied.
    assert manage(tmp_path, "migrate", "--verbosity", "0").returncode == 0
    with closing(sqlite3.connect(tmp_path / "db.sqlite3")) as db, db:
        db.execute(
            "INSERT INTO django_migrations (app, name, applied) "
            "VALUES ('calls', '0000_deleted', '2026-01-01')"
        )
    assert manage(tmp_path, "migrate", "calls", "--prune", "--verbosity", "0").returncode == 0
    assert rows(tmp_path)[-1][4] == {
        "applied": [],
        "unapplied": [],
        "pruned": ["calls.0000_deleted"],
    }


def test_an_initial_migration_faked_because_its_tables_are_there_is_named(tmp_path):
    assert manage(tmp_path, "migrate", "--verbosity", "0").returncode == 0
    assert manage(tmp_path, "migrate", "legacy", "zero", "--fake", "-v", "0").returncode == 0
    assert manage(tmp_path, "migrate", "--fake-initial", "--verbosity", "0").returncode == 0
    assert rows(tmp_path)[-1][4] == {
        "applied": ["legacy.0001_initial"],
        "unapplied": [],
        "faked": ["legacy.0001_initial"],  # its tables were kept, not made
    }


@pytest.mark.django_db
def test_a_run_that_fails_in_its_first_migration_is_a_failure_row_naming_it(settings, monkeypatch):
    # A migration run outside a transaction (CREATE INDEX CONCURRENTLY) leaves its work behind
    # when it fails, though nothing is recorded as applied.
    from django.core.management.commands import migrate as django_migrate
    from django.db import OperationalError, connection
    from django.db.migrations.loader import MigrationLoader

    settings.SECUREGATHER_AUDIT_MIGRATE = True
    index = MigrationLoader(connection).get_migration("calls", "0001_initial")

    def fails_in_it(self, *args, **options):
        self.verbosity = 0
        self.migration_progress_callback("apply_start", index)
        raise OperationalError("canceling statement due to user request")

    monkeypatch.setattr(django_migrate.Command, "handle", fails_in_it)
    with pytest.raises(OperationalError, match="canceling statement"):
        call_command("migrate", verbosity=0)
    row = AuditEvent.objects.get()
    assert (row.outcome, row.detail) == (
        "failure",
        {"applied": [], "unapplied": [], "failed": "calls.0001_initial"},
    )
