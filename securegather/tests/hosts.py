"""A host's view of the project: its settings from the environment alone, and manage.py run as a
process, as an engineer runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

SOUND_KEY = "k1:" + "ab" * 32


def server_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """securegather.settings from the environment alone: no .env, no DEBUG, a database unused."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SECUREGATHER_"))}
    env.update(
        DJANGO_ENV_FILE="/dev/null",
        DJANGO_SETTINGS_MODULE="securegather.settings",
        DJANGO_SECRET_KEY="x" * 50,
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        TWILIO_AUTH_TOKEN="token",
        SECUREGATHER_KEYS=SOUND_KEY,
    )
    env.update(overrides)
    return env


def manage(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """manage.py on an SQLite file of its own (no .env), as on a host."""
    return manage_with(server_env(tmp_path), *args, timeout=120)


def manage_with(
    env: dict[str, str], *args: str, timeout: int = 60
) -> subprocess.CompletedProcess[str]:
    """manage.py run as a process, in the project's directory, with ``env`` as its whole
    environment."""
    return subprocess.run(  # noqa: S603  (this interpreter and manage.py, with the test's words)
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
