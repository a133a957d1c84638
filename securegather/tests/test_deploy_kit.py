"""The deployment kit in deploy/: systemd accepts its units, and their commands, run by hand as
on a host without systemd, do their work. (The nginx configuration has test_behind_nginx.py.)"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from conftest import manage_with, server_env
from deploy.units import UNITS, exec_start, rendered

SYSTEMD_ANALYZE = "/usr/bin/systemd-analyze"


def run_unit(name: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The unit's ExecStart with its Environment= under ``env``, in its working directory."""
    argv, unit_env, directory = exec_start(name, settings.BASE_DIR)
    argv[0] = str(Path(sys.executable).parent / Path(argv[0]).name)  # this virtualenv's
    return subprocess.run(  # noqa: S603  (the unit's command)
        argv, cwd=directory, env=unit_env | env, capture_output=True, text=True, timeout=120
    )


def test_systemd_analyze_verifies_every_unit(tmp_path):
    if not shutil.which(SYSTEMD_ANALYZE):
        # .ci/run installs it (Debian: systemd): in CI its absence fails, never skips.
        if os.environ.get("CI") == "true":
            pytest.fail(f"{SYSTEMD_ANALYZE} not installed (Debian: systemd)")
        pytest.skip(f"{SYSTEMD_ANALYZE} not installed (Debian: systemd)")
    names = sorted(path.name for path in UNITS.iterdir())
    assert names == [
        "securegather-checkpoint.service",
        "securegather-checkpoint.timer",
        "securegather-purge.service",
        "securegather-purge.timer",
        "securegather.service",
    ]
    # Each with the checkout where this one is: verify wants the commands to exist.
    for name in names:
        (tmp_path / name).write_text(rendered(name, settings.BASE_DIR))
    verified = subprocess.run(  # noqa: S603  (fixed arguments)
        [SYSTEMD_ANALYZE, "verify", *(str(tmp_path / name) for name in names)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (verified.returncode, verified.stdout + verified.stderr) == (0, "")


def test_the_timers_start_their_services_hourly_and_every_five_minutes():
    assert (UNITS / "securegather-purge.timer").read_text().count("OnCalendar=hourly") == 1
    assert (UNITS / "securegather-checkpoint.timer").read_text().count("OnCalendar=*:0/5") == 1


def test_the_service_binds_gunicorn_to_this_host_only():
    _, environment, _ = exec_start("securegather.service", settings.BASE_DIR)
    assert environment["GUNICORN_BIND"] == "127.0.0.1:8000"
    assert "server 127.0.0.1:8000;" in (UNITS.parent / "nginx" / "securegather.conf").read_text()


def test_the_purge_units_command_purges(tmp_path):
    env = server_env(tmp_path)
    assert manage_with(env, "migrate", "--noinput", timeout=120).returncode == 0
    purged = run_unit("securegather-purge.service", env)
    assert purged.returncode == 0, purged.stderr
    assert purged.stdout.startswith("Ended 0 stale call(s), deleted 0 session(s) past retention")


def test_the_checkpoint_units_command_writes_to_the_sink(tmp_path):
    key, sink = tmp_path / "checkpoint.pem", tmp_path / "checkpoints.jsonl"
    env = server_env(
        tmp_path,
        SECUREGATHER_CHECKPOINT_KEY_FILE=str(key),
        SECUREGATHER_CHECKPOINT_FILE=str(sink),
    )
    assert manage_with(env, "generate_checkpoint_key", str(key)).returncode == 0
    assert manage_with(env, "migrate", "--noinput", timeout=120).returncode == 0
    first, second = (
        run_unit("securegather-checkpoint.service", env),
        run_unit("securegather-checkpoint.service", env),
    )
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("Checkpoint written at row")
    assert second.stdout.strip() == "No new audit rows since the last checkpoint: none written."
    assert len(sink.read_text().splitlines()) == 1
    verified = manage_with(
        env,
        *["verify_audit_log", "--checkpoints", str(sink)],
        *["--checkpoint-public-key", f"{key}.pub"],
    )
    assert verified.returncode == 0, verified.stderr


# Who owns the database and its public schema, and whether the runtime role may connect to the
# database, create in it, and create in the schema.
FACTS = """
SELECT pg_get_userbyid(d.datdba), pg_get_userbyid(n.nspowner),
       has_database_privilege(:'runtime', :'database', 'CONNECT'),
       has_database_privilege(:'runtime', :'database', 'CREATE'),
       has_schema_privilege(:'runtime', 'public', 'CREATE')
FROM pg_database d, pg_namespace n WHERE d.datname = :'database' AND n.nspname = 'public';
"""


@pytest.mark.postgres
def test_the_role_script_makes_an_owner_a_runtime_role_and_their_database(db):
    """deploy/postgresql/roles.sql through psql, with names of this test's own."""
    suffix = secrets.token_hex(4)
    owner, runtime, database = f"sgt_owner_{suffix}", f"sgt_rt_{suffix}", f"sgt_db_{suffix}"
    script = UNITS.parent / "postgresql" / "roles.sql"
    params = connection.get_connection_params()
    psql = [shutil.which("psql") or "psql", "-v", "ON_ERROR_STOP=1", "-X", "-q"]
    psql += ["-h", params.get("host") or "127.0.0.1", "-U", params.get("user") or "postgres"]
    names = ["-v", f"owner={owner}", "-v", f"runtime={runtime}", "-v", f"database={database}"]
    passwords = ["-v", "owner_password=x", "-v", "service_password=y"]
    try:
        made = subprocess.run(  # noqa: S603  (fixed arguments)
            [*psql, "-d", "postgres", "-f", str(script), *names, *passwords],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert made.returncode == 0, made.stderr
        facts = subprocess.run(  # noqa: S603  (fixed arguments)
            [*psql, "-d", database, "-At", *names],
            input=FACTS,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        for statement in (
            f"DROP DATABASE IF EXISTS {database}",
            f"DROP ROLE IF EXISTS {runtime}",
            f"DROP ROLE IF EXISTS {owner}",
        ):
            subprocess.run(  # noqa: S603  (fixed arguments)
                [*psql, "-d", "postgres", "-c", statement], capture_output=True, timeout=60
            )
    assert facts.stdout.strip() == f"{owner}|{owner}|t|f|f", facts.stderr
