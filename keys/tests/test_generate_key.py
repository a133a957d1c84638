import io
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from conftest import manage_with
from keys.keyring import parse_entries


def generate_key(*args: str) -> str:
    out = io.StringIO()
    call_command("generate_key", *args, stdout=out)
    return out.getvalue()


@override_settings(SECUREGATHER_KEYS="")
def test_prints_one_32_byte_entry_the_keyring_accepts():
    from keys.management.commands.generate_key import Command

    assert Command.requires_system_checks == []  # it makes the key a missing keyring lacks
    output = generate_key()
    assert output.count("\n") == 1
    (key,) = parse_entries(output)
    assert len(key.secret) == 32 and key.kid.startswith("k")
    assert generate_key() != output


def test_takes_the_key_id_to_use():
    (key,) = parse_entries(generate_key("--id", "k2026"))
    assert key.kid == "k2026"


@pytest.mark.parametrize("kid", ["has:colon", "has space", "x" * 33])
def test_refuses_an_id_the_keyring_would_not_parse(kid):
    with pytest.raises(CommandError, match="a key id is 1-32"):
        generate_key("--id", kid)


def no_settings_env() -> dict[str, str]:
    """A new host's environment: no .env, no secret key, no keyring, no database."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "DJANGO_ENV_FILE": "/dev/null",
        "DJANGO_SETTINGS_MODULE": "securegather.settings",
    }


def test_works_before_any_setting_exists():
    run = manage_with(no_settings_env(), "generate_key", "--id", "first")
    assert (run.returncode, run.stderr) == (0, "")
    (key,) = parse_entries(run.stdout)
    assert key.kid == "first" and len(key.secret) == 32


def test_without_settings_a_bad_id_is_still_one_line_and_exit_1():
    run = manage_with(no_settings_env(), "generate_key", "--id", "has:colon")
    assert (run.returncode, run.stdout) == (1, "")
    assert run.stderr == "CommandError: a key id is 1-32 letters, digits, _ or -\n"


def test_a_missing_secret_key_still_stops_every_other_command():
    run = manage_with(no_settings_env(), "check")
    assert run.returncode == 1
    assert run.stderr == (
        "manage.py: Set the DJANGO_SECRET_KEY environment variable. See docs/configuration.md.\n"
    )


def test_runs_as_a_module_of_its_own():
    run = subprocess.run(
        [sys.executable, "-m", "keys.generate"],
        cwd=settings.BASE_DIR,
        env=no_settings_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0
    (key,) = parse_entries(run.stdout)
    assert len(key.secret) == 32
