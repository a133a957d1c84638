import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

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
