"""`DJANGO_DEBUG=false manage.py check --deploy` is clean with the documented production env.

The check runs in a subprocess on the real settings module, so what is tested is what a host
reads from its environment, defaults included. DJANGO_ENV_FILE=/dev/null keeps a developer's
.env (which turns the TLS settings off for local http) out of it.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
from pathlib import Path

import pytest
from django.conf import settings

from conftest import manage_with
from keys.keyring import new_key_entry

BASE_DIR = Path(settings.BASE_DIR)
DOC = BASE_DIR / "docs/deployment.md"
PLACEHOLDERS = {
    "DJANGO_SECRET_KEY": lambda: secrets.token_urlsafe(50),
    "TWILIO_AUTH_TOKEN": lambda: secrets.token_hex(16),
    "TWILIO_ACCOUNT_SID": lambda: "AC" + secrets.token_hex(16),
    "SECUREGATHER_LEGACY_KEY": lambda: secrets.token_hex(32),
    "SECUREGATHER_API_TOKEN": lambda: secrets.token_urlsafe(32),
}


def documented_env(marker: str) -> dict[str, str]:
    """The NAME=value lines of the code block after ``<!-- marker -->`` in the deployment page."""
    block = re.search(rf"<!-- {marker} -->\n```sh\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert block is not None, f"docs/deployment.md has no {marker} block"
    env = {}
    for line in block.group(1).splitlines():
        if line and not line.startswith("#"):
            name, value = line.split("=", 1)
            env[name] = PLACEHOLDERS[name]() if value.startswith("<") else value
    return env


def check_deploy(env: dict[str, str], keys_file: Path) -> subprocess.CompletedProcess[str]:
    keys_file.write_text(new_key_entry() + "\n")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DJANGO_SETTINGS_MODULE": "securegather.settings",
        "DJANGO_ENV_FILE": os.devnull,
        **env,
        # The documented path is the production host's; the test's keys live here.
        "SECUREGATHER_KEYS_FILE": str(keys_file),
    }
    return manage_with(env, "check", "--deploy", "--fail-level", "WARNING")


def bare_manage(*args: str, env_file: str = os.devnull) -> subprocess.CompletedProcess[str]:
    """manage.py on a host whose environment sets nothing but DJANGO_ENV_FILE."""
    return manage_with({"PATH": os.environ.get("PATH", ""), "DJANGO_ENV_FILE": env_file}, *args)


def test_the_documented_production_env_passes_check_deploy(tmp_path):
    env = documented_env("production-env")
    assert env["DJANGO_DEBUG"] == "false"
    result = check_deploy(env, tmp_path / "keys")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "System check identified no issues (0 silenced)."


def test_with_the_tutorial_api_configured_too(tmp_path):
    env = {**documented_env("production-env"), **documented_env("tutorial-env")}
    result = check_deploy(env, tmp_path / "keys")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "System check identified no issues (0 silenced)."


@pytest.mark.parametrize(
    ("override", "warning"),
    [
        ({"DJANGO_SECURE_HSTS_SECONDS": "0"}, "security.W004"),
        ({"DJANGO_SECURE_SSL_REDIRECT": "false"}, "security.W008"),
        # W010, not W012: Django gives W012 only when MIDDLEWARE names its own SessionMiddleware.
        ({"DJANGO_SECURE_COOKIES": "false"}, "security.W010"),
        ({"DJANGO_DEBUG": "true"}, "security.W018"),
        ({"SECUREGATHER_API_TOKEN": ""}, "legacy.W001"),
    ],
)
def test_turning_a_protection_off_is_reported(tmp_path, override, warning):
    """The development .env's overrides are exactly what check --deploy would complain about."""
    env = {**documented_env("production-env"), **documented_env("tutorial-env"), **override}
    result = check_deploy(env, tmp_path / "keys")
    assert result.returncode == 1
    assert warning in result.stderr


@pytest.mark.parametrize("named", ["missing", "a-directory"])
def test_an_env_file_that_cannot_be_read_is_named_as_the_error(tmp_path, named):
    (tmp_path / "a-directory").mkdir()
    path = tmp_path / named
    result = bare_manage("check", env_file=str(path))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"manage.py: DJANGO_ENV_FILE names {path}, which is no readable file. "
        "See docs/configuration.md."
    ]


def test_a_missing_variable_is_one_line_naming_it():
    # Every command but generate_key, which reads no setting (keys/tests/test_generate_key.py).
    result = bare_manage("check")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "manage.py: Set the DJANGO_SECRET_KEY environment variable. See docs/configuration.md."
    ]


def test_settings_named_on_the_command_line_are_the_ones_read():
    # Read before --settings was taken, the settings would be securegather.settings, which
    # lacks DJANGO_SECRET_KEY here; securegather.test_settings has one of its own.
    result = bare_manage(
        "shell",
        "--settings=securegather.test_settings",
        "-c",
        "from django.conf import settings; print(settings.SETTINGS_MODULE)",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "securegather.test_settings"


@pytest.mark.parametrize("command", ["--version", "help"])
def test_version_and_help_need_no_settings(command):
    result = bare_manage(command)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
