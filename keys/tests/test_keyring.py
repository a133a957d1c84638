import hashlib

import pytest
from django.test import override_settings

from keys.keyring import (
    Keyring,
    KeyringError,
    SealError,
    get_keyring,
    new_key_entry,
    parse_entries,
    token_kid,
)

OLD = "old:" + "11" * 32
NEW = "new:" + "22" * 32


def ring(text: str) -> Keyring:
    return Keyring(parse_entries(text))


def test_seal_open_round_trip():
    keyring = ring(NEW)
    token = keyring.seal("8264", "calls.CallSession.card:CA1")
    assert "8264" not in token
    assert keyring.open(token, "calls.CallSession.card:CA1") == "8264"


def test_token_names_version_and_primary_key():
    token = ring(f"{NEW},{OLD}").seal("8264", "ctx")
    assert token.startswith("sg1:new:")
    assert token_kid(token) == "new"


def test_each_seal_uses_a_fresh_nonce():
    keyring = ring(NEW)
    assert keyring.seal("8264", "ctx") != keyring.seal("8264", "ctx")


def test_open_in_another_purpose_fails():
    keyring = ring(NEW)
    token = keyring.seal("8264", "calls.CallSession.card:CA1")
    with pytest.raises(SealError):
        keyring.open(token, "calls.CallSession.pin:CA1")


def test_open_under_another_record_fails():
    keyring = ring(NEW)
    token = keyring.seal("8264", "calls.CallSession.card:CA1")
    with pytest.raises(SealError):
        keyring.open(token, "calls.CallSession.card:CA2")


@pytest.mark.parametrize("position", [2, 8, 20, -1])
def test_tampered_token_fails_cleanly(position):
    keyring = ring(NEW)
    token = keyring.seal("8264", "ctx")
    chars = list(token)
    chars[position] = "0" if chars[position] != "0" else "1"
    with pytest.raises(SealError) as excinfo:
        keyring.open("".join(chars), "ctx")
    assert str(excinfo.value) == "token cannot be opened"


@pytest.mark.parametrize(
    "token",
    ["", "8264", "sg1:new:", "sg1:new:!!!", "sg2:new:abc", "sg1:gone:AAAA", "sg1:new:AAAA:extra"],
)
def test_garbage_fails_cleanly(token):
    with pytest.raises(SealError):
        ring(NEW).open(token, "ctx")


def test_relabelled_key_id_fails():
    both = ring(f"{NEW},{OLD}")
    token = both.seal("8264", "ctx")
    with pytest.raises(SealError):
        both.open(token.replace("sg1:new:", "sg1:old:"), "ctx")


def test_old_key_still_opens_after_primary_changes():
    token = ring(OLD).seal("8264", "ctx")
    assert ring(f"{NEW},{OLD}").open(token, "ctx") == "8264"


def test_removed_key_cannot_open():
    token = ring(OLD).seal("8264", "ctx")
    with pytest.raises(SealError):
        ring(NEW).open(token, "ctx")


def test_digest_is_keyed_and_names_its_key():
    both = ring(f"{NEW},{OLD}")
    digest = both.digest("8264", "purpose")
    assert digest.startswith("new:")
    assert digest.split(":")[1] != hashlib.sha256(b"8264").hexdigest()
    assert digest != ring(f"{OLD},{NEW}").digest("8264", "purpose")
    assert both.digest("8264", "other purpose") != digest
    assert both.digests("8264", "purpose") == [digest, both.digest("8264", "purpose", "old")]


def test_key_check_value_changes_with_the_bytes():
    assert parse_entries(NEW)[0].check_value == parse_entries(NEW)[0].check_value
    assert parse_entries(NEW)[0].check_value != parse_entries("new:" + "33" * 32)[0].check_value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no keys configured"),
        ("nocolon", "entry 1 is not 'kid:hex'"),
        ("bad id:" + "11" * 32, "entry 1 is not 'kid:hex'"),
        ("k1:zz" + "11" * 31, "not hexadecimal"),
        ("k1:" + "11" * 16, "16 bytes, not 32"),
        (f"{NEW},{NEW}", "appears twice"),
    ],
)
def test_bad_configuration_is_refused_without_echoing_key_material(text, message):
    with pytest.raises(KeyringError) as excinfo:
        ring(text)
    assert message in str(excinfo.value)
    assert "1111" not in str(excinfo.value)


def test_entries_may_be_newline_separated():
    assert ring(f"{NEW}\n{OLD}\n").kids == ["new", "old"]


def test_new_key_entry_is_a_valid_32_byte_entry():
    kid, hexkey = new_key_entry("k9").split(":")
    assert kid == "k9" and len(bytes.fromhex(hexkey)) == 32
    assert new_key_entry() != new_key_entry()
    with pytest.raises(KeyringError):
        new_key_entry("no:colons")


def test_keys_file_is_read(tmp_path):
    keys = tmp_path / "keys"
    keys.write_text(f"{NEW}\n{OLD}\n")
    with override_settings(SECUREGATHER_KEYS="", SECUREGATHER_KEYS_FILE=str(keys)):
        assert get_keyring().kids == ["new", "old"]


def test_unreadable_keys_file_is_a_keyring_error(tmp_path):
    with (
        override_settings(SECUREGATHER_KEYS_FILE=str(tmp_path / "missing")),
        pytest.raises(KeyringError, match="cannot be read"),
    ):
        get_keyring()


def test_settings_change_rebuilds_the_keyring():
    with override_settings(SECUREGATHER_KEYS=OLD):
        assert get_keyring().primary.kid == "old"
    assert get_keyring().primary.kid == "test2"


RETIRED = "old:" + "11" * 32 + ":retired"


def test_retired_key_never_seals_opens_or_digests():
    token = ring(OLD).seal("8264", "ctx")
    digest = ring(OLD).digest("8264", "purpose")
    both = ring(f"{NEW},{RETIRED}")
    assert both.kids == ["new"] and list(both.retired) == ["old"]
    assert both.seal("8264", "ctx").startswith("sg1:new:")
    with pytest.raises(SealError):
        both.open(token, "ctx")
    assert digest not in both.digests("8264", "purpose")
    with pytest.raises(KeyError):
        both.digest("8264", "purpose", "old")


def test_retired_key_is_handed_out_for_audit_history_only():
    both = ring(f"{RETIRED},{NEW}")  # a retired entry first does not make it primary
    assert both.primary.kid == "new"
    assert both.key_for_audit("old").retired
    assert both.key_for_audit("old").secret == bytes.fromhex("11" * 32)
    assert both.key_for_audit("new") is both.primary
    assert both.key_for_audit("gone") is None


def test_a_ring_of_retired_keys_only_is_refused():
    with pytest.raises(KeyringError, match="every key is retired") as excinfo:
        ring(RETIRED)
    assert excinfo.value.problem == "missing"


def test_keys_file_may_hold_retired_entries(tmp_path):
    keys = tmp_path / "keys"
    keys.write_text(f"{NEW}\n{RETIRED}\n")
    with override_settings(SECUREGATHER_KEYS="ignored", SECUREGATHER_KEYS_FILE=str(keys)):
        assert get_keyring().kids == ["new"]
        assert get_keyring().key_for_audit("old") is not None


def test_seals_are_counted_in_memory():
    keyring = ring(f"{NEW},{OLD}")
    for _ in range(3):
        keyring.seal("8264", "ctx")
    assert keyring.unrecorded_seals == 3
