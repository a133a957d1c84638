"""Django's migrate records each run that changes the schema, its start and its end, and the
next run records one that never ended as failed (audit/migration_runs.py). Real runs go through
manage.py under the production settings, on an SQLite file of their own."""

from __future__ import annotations

import getpass
import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from django.core.checks import run_checks
from django.core.management import get_commands
from django.core.management.sql import emit_pre_migrate_signal

from audit import migration_runs
from audit.models import AuditEvent
from conftest import manage

CALLS = "calls.0001_initial"
# Every migration of calls, in the order a run applies them (a run back unapplies them in
# reverse, and its end lists them in this order).
CALLS_ALL = [
    CALLS,
    "calls.0002_caller_digest",
    "calls.0003_callsession_attestation",
    "calls.0004_longer_sealed_values",
]
LEGACY = "legacy.0001_initial"


def rows(tmp_path: Path) -> list[tuple[str, str, str, str, dict]]:
    with closing(sqlite3.connect(tmp_path / "db.sqlite3")) as db:
        query = "SELECT event, outcome, actor, channel, detail FROM audit_auditevent"
        return [(*row[:4], json.loads(row[4])) for row in db.execute(f"{query} ORDER BY id")]


def details(tmp_path: Path) -> list[tuple[str, dict]]:
    return [(outcome, detail) for _, outcome, _, _, detail in rows(tmp_path)]


def migrate(tmp_path: Path, *args: str) -> None:
    run = manage(tmp_path, "migrate", *args, "--verbosity", "0")
    assert (run.returncode, run.stderr) == (0, "")


def test_the_command_is_djangos_own():
    assert get_commands()["migrate"] == "django.core"


def test_each_run_that_changes_the_schema_is_a_start_and_an_end_naming_its_migrations(tmp_path):
    migrate(tmp_path)
    # The first run's start found no audit table to write to; its end names all it applied.
    ((event, outcome, actor, channel, detail),) = rows(tmp_path)
    assert (event, outcome, channel, detail["unapplied"]) == ("migrated", "success", "system", [])
    assert actor and actor != "twilio"  # the OS user who ran it
    assert {"accounts.0001_initial", "audit.0002_append_only"} <= set(detail["applied"])
    migrate(tmp_path, "calls", "zero")
    migrate(tmp_path)
    assert details(tmp_path)[1:] == [
        ("info", {"run": "started", "applying": [], "unapplying": CALLS_ALL[::-1]}),
        ("success", {"applied": [], "unapplied": CALLS_ALL}),
        ("info", {"run": "started", "applying": CALLS_ALL, "unapplying": []}),
        ("success", {"applied": CALLS_ALL, "unapplied": []}),
    ]
    assert manage(tmp_path, "verify_audit_log").returncode == 0


def test_a_run_that_changes_nothing_writes_nothing(tmp_path):
    migrate(tmp_path)
    migrate(tmp_path)
    assert manage(tmp_path, "migrate", "--plan").returncode == 0
    assert len(rows(tmp_path)) == 1


def test_a_run_that_stops_partway_is_recorded_as_failed_by_the_next(tmp_path):
    migrate(tmp_path)
    migrate(tmp_path, "calls", "zero")
    # Forgotten, its table kept: applying it again fails on the table, after calls' is made.
    migrate(tmp_path, "legacy", "zero", "--fake")
    failed = manage(tmp_path, "migrate", "--verbosity", "0")
    assert failed.returncode == 1 and "already exists" in failed.stderr
    assert details(tmp_path)[-1] == (
        "info",
        {"run": "started", "applying": [*CALLS_ALL, LEGACY], "unapplying": []},
    )
    check = manage(tmp_path, "check", "--database", "default")
    assert check.returncode == 0 and "(audit.W001)" in check.stderr
    # The next run, mended (--fake-initial takes legacy's table as made), warns of it as it
    # checks, then records it first.
    mended = manage(tmp_path, "migrate", "--fake-initial", "--verbosity", "0")
    assert mended.returncode == 0 and "(audit.W001)" in mended.stderr
    (_, outcome, actor, _, detail), *after = rows(tmp_path)[-3:]
    assert (outcome, actor) == ("failure", rows(tmp_path)[-4][2])  # by whoever ran it
    assert detail == {
        "run": "unfinished",
        "started_at": detail["started_at"],
        "applied": CALLS_ALL,
        "unapplied": [],
        "failed": LEGACY,  # the migration it stopped in
    }
    assert [(outcome, detail) for _, outcome, _, _, detail in after] == [
        ("info", {"run": "started", "applying": [LEGACY], "unapplying": []}),
        ("success", {"applied": [LEGACY], "unapplied": []}),
    ]
    check = manage(tmp_path, "check", "--database", "default")
    assert "audit.W001" not in check.stderr
    assert manage(tmp_path, "verify_audit_log").returncode == 0


def test_a_run_back_past_the_audit_tables_writes_none_and_the_way_forward_is_one(tmp_path):
    # With the audit app unapplied there is no audit table to write to, and the run's start,
    # written before, went with it.
    migrate(tmp_path)
    migrate(tmp_path, "audit", "zero")
    migrate(tmp_path)
    ((*_, forward),) = rows(tmp_path)
    assert forward["applied"] == [
        "audit.0001_initial",
        "audit.0002_append_only",
        "audit.0003_refusalcount",
        "audit.0004_more_events",
        "audit.0005_caller_digest",
        "audit.0006_caller_digest_index",
    ]
    assert manage(tmp_path, "verify_audit_log").returncode == 0


def test_a_faked_run_is_recorded_as_what_it_marked_applied(tmp_path):
    # The signals do not say a run was faked (--fake, --fake-initial): its rows name what it
    # recorded as applied, as a real run's do.
    migrate(tmp_path)
    migrate(tmp_path, "legacy", "zero", "--fake")
    migrate(tmp_path, "--fake-initial")
    assert details(tmp_path)[-1] == ("success", {"applied": [LEGACY], "unapplied": []})


@pytest.fixture
def audited(settings, monkeypatch):
    """Migrate runs recorded in this process, none under way (the test settings record none)."""
    settings.SECUREGATHER_AUDIT_MIGRATE = True
    monkeypatch.setattr(migration_runs, "_runs", {})


def start_of_a_run(actor: str, **plan: list[str]) -> None:
    AuditEvent.record(
        AuditEvent.Event.MIGRATED,
        AuditEvent.Outcome.INFO,
        actor=actor,
        channel=AuditEvent.Channel.SYSTEM,
        run="started",
        **{"applying": [], "unapplying": [], **plan},
    )


def warnings() -> list[str]:
    return [message.id for message in run_checks(databases=["default"]) if message.id]


@pytest.mark.django_db
def test_a_run_that_has_not_ended_is_audit_w001(audited):
    assert "audit.W001" not in warnings()
    start_of_a_run("ana", unapplying=[CALLS])
    assert "audit.W001" in warnings()


@pytest.mark.django_db
def test_the_unfinished_run_is_recorded_by_whoever_ran_it(audited, monkeypatch):
    start_of_a_run("ana", unapplying=[CALLS])
    monkeypatch.setattr(getpass, "getuser", lambda: "ben")
    # As migrate sends it, once for each app: one row all the same.
    emit_pre_migrate_signal(0, False, "default", plan=[])
    _, row = AuditEvent.objects.filter(event="migrated").order_by("id")
    assert (row.actor, row.outcome, row.detail["unapplied"], row.detail["failed"]) == (
        "ana",
        "failure",
        [],
        CALLS,  # still applied: the run stopped before it
    )
    assert "audit.W001" not in warnings()
