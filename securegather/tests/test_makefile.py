"""`make run`: the port it is given is the one gunicorn binds and the banner names."""

import os
import shutil
import subprocess
from pathlib import Path

from django.conf import settings


def run(tmp_path: Path, *args: str, **env: str) -> str:
    """`make run` with a stand-in virtualenv whose gunicorn prints the address it was given, in a
    directory of its own: the stand-in python writes an empty .env, never the checkout's."""
    for name in ("Makefile", "requirements.txt"):
        shutil.copy(Path(settings.BASE_DIR) / name, tmp_path / name)
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / ".run").touch()
    for tool in ("python", "pybabel"):
        (venv / "bin" / tool).write_text("#!/bin/sh\nexit 0\n")
    (venv / "bin" / "gunicorn").write_text('#!/bin/sh\necho "gunicorn binds $GUNICORN_BIND"\n')
    for tool in (venv / "bin").iterdir():
        tool.chmod(0o755)
    base = {k: v for k, v in os.environ.items() if k != "GUNICORN_BIND"}
    done = subprocess.run(  # noqa: S603
        ["make", "--no-print-directory", "run", f"VENV={venv}", *args],  # noqa: S607
        cwd=tmp_path,
        env={**base, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout


def test_run_listens_on_8000_by_default(tmp_path):
    out = run(tmp_path)
    assert "SecureGather on http://127.0.0.1:8000  (webhook: POST /voice/)" in out
    assert "gunicorn binds 127.0.0.1:8000" in out


def test_port_moves_gunicorn_and_the_banner_together(tmp_path):
    out = run(tmp_path, "PORT=8080")
    assert "SecureGather on http://127.0.0.1:8080  (webhook: POST /voice/)" in out
    assert "--url http://127.0.0.1:8080" in out
    assert "gunicorn binds 127.0.0.1:8080" in out
    assert ":8000" not in out


def test_a_bind_from_the_environment_is_the_one_named(tmp_path):
    out = run(tmp_path, GUNICORN_BIND="0.0.0.0:9000")
    assert "SecureGather on http://0.0.0.0:9000" in out
    assert "gunicorn binds 0.0.0.0:9000" in out
