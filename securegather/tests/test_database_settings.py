"""The database options the settings give each engine, read from the settings module as a host
loads it: server-side binding on PostgreSQL, SQLite's locking and secure_delete."""

import json

from conftest import manage_with, server_env

PRINT_OPTIONS = (
    "import json; from django.conf import settings; "
    "print(json.dumps(settings.DATABASES['default'].get('OPTIONS', {})))"
)


def options(tmp_path, database_url: str) -> dict[str, object]:
    env = server_env(tmp_path, DATABASE_URL=database_url)
    result = manage_with(env, "shell", "-c", PRINT_OPTIONS)
    assert result.returncode == 0, result.stderr
    # The last line: the shell may print a system check's warning before it.
    return json.loads(result.stdout.splitlines()[-1])


def test_postgresql_binds_parameters_on_the_server(tmp_path):
    # A statement the server logs then carries placeholders, not a caller's number.
    assert options(tmp_path, "postgres://service@db.example:5432/securegather") == {
        "server_side_binding": True
    }


def test_sqlite_takes_its_write_lock_at_begin_and_overwrites_deleted_values(tmp_path):
    sqlite = options(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}")
    assert (sqlite["transaction_mode"], sqlite["timeout"]) == ("IMMEDIATE", 20)
    assert "PRAGMA secure_delete=ON;" in str(sqlite["init_command"])
