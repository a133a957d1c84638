"""A database that cannot be reached, or lacks migrations, is one line that says what to do: in
`check --database default` (securegather.E012, E013) and in every manage.py command, Django's
own included."""

from __future__ import annotations

import pytest
from django.db import OperationalError, connection

from conftest import manage, manage_with, server_env, unreachable_database_url
from keys.checks import check_database_migrated, check_database_reachable
from keys.database import missing_migrations, quiet_when_unreachable, unreachable


def unreachable_env(tmp_path):
    return server_env(tmp_path, DATABASE_URL=unreachable_database_url())


def test_e012_check_database_on_an_unreachable_database_is_one_error_not_a_traceback(tmp_path):
    run = manage_with(unreachable_env(tmp_path), "check", "--deploy", "--database", "default")
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("?: (")]
    assert errors[0].startswith(
        "?: (securegather.E012) Cannot connect to the database: connection failed: "
    )
    assert errors[0].endswith(
        "Connection refused. Check that it is running and that DATABASE_URL names it."
    )
    # Said once: the other database checks say nothing of a database they cannot ask.
    assert [line for line in errors if "securegather.E0" in line or "audit." in line] == errors[:1]


def test_e012_stops_migrate_in_a_line(tmp_path):
    run = manage_with(unreachable_env(tmp_path), "migrate")
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "(securegather.E012) Cannot connect to the database" in run.stderr


def test_e013_check_deploy_on_a_database_never_migrated(tmp_path):
    run = manage(tmp_path, "check", "--deploy", "--database", "default")
    assert run.returncode == 1
    assert (
        "?: (securegather.E013) The database has no tables: run `manage.py migrate`, or check "
        "that DATABASE_URL names the service's database.\n"
    ) in run.stderr


def test_e013_names_the_first_migration_lacking(tmp_path):
    assert manage(tmp_path, "migrate", "--verbosity", "0").returncode == 0
    assert manage(tmp_path, "migrate", "legacy", "zero", "--verbosity", "0").returncode == 0
    run = manage(tmp_path, "check", "--deploy", "--database", "default")
    assert (
        "(securegather.E013) The database lacks 1 migration(s), legacy.0001_initial first: run "
        "`manage.py migrate`."
    ) in run.stderr


def test_e013_does_not_stop_the_migrate_that_mends_it(tmp_path):
    assert manage(tmp_path, "migrate", "--verbosity", "0").returncode == 0
    run = manage(tmp_path, "check", "--deploy", "--database", "default")
    assert "E013" not in run.stderr and "E012" not in run.stderr


@pytest.mark.parametrize(
    "command", [("createsuperuser", "--noinput", "--username", "x"), ("showmigrations",)]
)
def test_djangos_own_commands_say_it_in_a_line_too(tmp_path, command):
    run = manage_with(unreachable_env(tmp_path), *command)
    assert run.returncode == 1
    assert run.stderr.startswith("manage.py: Cannot connect to the database: ")
    assert run.stderr.count("\n") == 1


def test_djangos_own_commands_on_a_database_never_migrated(tmp_path):
    run = manage(tmp_path, "changepassword", "x")  # a new, empty SQLite file
    assert run.returncode == 1
    assert run.stderr.endswith(
        "manage.py: The database has no tables: run `manage.py migrate`, or check that "
        "DATABASE_URL names the service's database.\n"
    )
    assert "Traceback" not in run.stderr


@pytest.mark.django_db
def test_a_reachable_migrated_database_has_nothing_to_say():
    assert unreachable() is None and missing_migrations() is None
    assert check_database_reachable(databases=["default"]) == []
    assert check_database_migrated(databases=["default"]) == []


@pytest.mark.django_db
def test_a_check_on_an_unreachable_database_is_quiet_but_other_errors_are_raised(monkeypatch):
    def failing(app_configs=None, databases=None, **kwargs):
        raise OperationalError("disk I/O error")

    quiet = quiet_when_unreachable(failing)
    with pytest.raises(OperationalError, match="disk I/O error"):
        quiet(databases=["default"])

    def refused():
        raise OperationalError("connection refused")

    monkeypatch.setattr(connection, "ensure_connection", refused)
    assert quiet(databases=["default"]) == []
    [error] = check_database_reachable(databases=["default"])
    assert (error.id, error.msg) == (
        "securegather.E012",
        "Cannot connect to the database: connection refused. Check that it is running and that "
        "DATABASE_URL names it.",
    )
