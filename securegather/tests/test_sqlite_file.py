"""A SQLite database file is its owner's alone (0600), and deleted values are overwritten."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from django.db.utils import ConnectionHandler

from conftest import CALLER

ROOT = Path(__file__).resolve().parents[2]

# Run with the project's settings against a new SQLite file: its mode, its pragmas, and whether a
# deleted value is left in it.
PROBE = """
import json, os, stat, sys
import django
django.setup()
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute("PRAGMA secure_delete")
    secure_delete = cursor.fetchone()[0]
    cursor.execute("CREATE TABLE sealed (value text)")
    cursor.execute("INSERT INTO sealed (value) VALUES (%s)", [sys.argv[1]])
    cursor.execute("DELETE FROM sealed")
    cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
name = connection.settings_dict["NAME"]
connection.close()
print(json.dumps({
    "secure_delete": secure_delete,
    "asked": "PRAGMA secure_delete=ON;" in connection.settings_dict["OPTIONS"]["init_command"],
    "mode": stat.S_IMODE(os.stat(name).st_mode),
}))
"""


def test_the_projects_sqlite_file_is_0600_and_keeps_no_deleted_value(tmp_path):
    database = tmp_path / "db.sqlite3"
    marker = f"sealed-{CALLER}-value"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{database}",
        "DJANGO_SETTINGS_MODULE": "securegather.test_settings",
    }
    result = subprocess.run(  # noqa: S603  (this interpreter, with the probe above)
        [sys.executable, "-c", PROBE, marker],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    # Asked for, not left to the build: Debian's SQLite has it on by default, others off.
    assert probe == {"secure_delete": 1, "asked": True, "mode": 0o600}
    for path in tmp_path.iterdir():
        assert marker.encode() not in path.read_bytes(), path.name


def test_a_file_made_with_a_loose_umask_is_made_0600_as_a_connection_opens_it(
    tmp_path, django_db_blocker
):
    database = tmp_path / "loose.sqlite3"
    # The database and the WAL files a run before this one left, each readable by everyone.
    left = [database, tmp_path / "loose.sqlite3-wal", tmp_path / "loose.sqlite3-shm"]
    for path in left:
        path.touch()
        os.chmod(path, 0o644)
    handler = ConnectionHandler(
        {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(database)}}
    )
    connection = handler["default"]
    try:
        with django_db_blocker.unblock():
            connection.ensure_connection()
    finally:
        connection.close()
    assert [stat.S_IMODE(path.stat().st_mode) for path in left] == [0o600] * 3


def test_an_in_memory_database_is_left_alone(django_db_blocker):
    handler = ConnectionHandler(
        {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
    )
    connection = handler["default"]
    try:
        with django_db_blocker.unblock():
            connection.ensure_connection()  # no file to change, and nothing raised
    finally:
        connection.close()
