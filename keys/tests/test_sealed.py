import json

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection, transaction
from django.test import override_settings

from accounts.models import Account
from calls.models import CallSession
from keys.keyring import KeyringError, SealError, get_keyring
from keys.models import KeyRecord
from keys.sealed import MASK, SEALS_PER_RECORD, Sealed, SealedField


def test_sealed_value_prints_masked_everywhere():
    token = get_keyring().seal("8264", "ctx")
    sealed = Sealed(token)
    printed = "%s" % (sealed,)  # noqa: UP031 (the old operator is a printing path too)
    for text in (str(sealed), repr(sealed), f"{sealed}", f"{sealed!r}", printed):
        assert "8264" not in text and token not in text
    assert str(sealed) == MASK
    assert "kid=test2" in repr(sealed)


@pytest.mark.django_db
def test_column_holds_a_token_and_attribute_a_sealed_object():
    account = Account(number="AC1", balance=0)
    account.set_credentials("8264", "5937")
    account.save()
    with connection.cursor() as cursor:
        cursor.execute("SELECT card_last4, pin FROM accounts_account WHERE number = 'AC1'")
        card, pin = cursor.fetchone()
    assert card.startswith("sg1:test2:") and pin.startswith("sg1:test2:")
    fetched = Account.objects.get(number="AC1")
    assert isinstance(fetched.card_last4, Sealed)
    assert fetched.unseal("card_last4") == "8264"
    assert fetched.unseal("pin") == "5937"


@pytest.mark.django_db
def test_a_plain_string_is_refused_by_the_field():
    account = Account(number="AC1", balance=0, card_last4="8264", pin_digest="x", card_digest="x")
    with pytest.raises(TypeError, match="takes a Sealed value"):
        account.save()


def fixture_with(tmp_path, **fields):
    path = tmp_path / "account.json"
    row = {"number": "AC9", "card_digest": "x", "pin_digest": "x", **fields}
    row.update(balance="0.00", created_at="2026-01-01T00:00:00Z", updated_at="2026-01-01T00:00:00Z")
    path.write_text(json.dumps([{"model": "accounts.account", "pk": 9, "fields": row}]))
    return path


@pytest.mark.django_db
def test_a_fixture_with_plaintext_in_a_sealed_column_loads_nothing_and_quotes_nothing(
    tmp_path, capsys
):
    with pytest.raises(TypeError, match="card_last4 holds no sealed value") as failure:
        call_command("loaddata", fixture_with(tmp_path, card_last4="8264", pin="5937"))
    output = capsys.readouterr()
    assert "8264" not in str(failure.value) + output.out + output.err
    assert not Account.objects.exists()
    # A token's look-alike is no token either: the right header, no hex body.
    with pytest.raises(TypeError, match="holds no sealed value"):
        call_command("loaddata", fixture_with(tmp_path, card_last4="sg1:test2:8264"))


@pytest.mark.django_db
def test_dumped_rows_load_again_tokens_and_empty_columns_alike(tmp_path, demo_account):
    dump = tmp_path / "dump.json"
    call_command("dumpdata", "accounts.account", output=str(dump))
    session = CallSession.objects.create(call_sid="CA" + "0" * 32)  # no card, no PIN yet
    call_command("dumpdata", "calls.callsession", output=str(tmp_path / "sessions.json"))
    Account.objects.all().delete()
    session.delete()
    call_command("loaddata", dump, tmp_path / "sessions.json")
    assert Account.objects.get(number=demo_account.number).unseal("pin") == "4321"
    assert CallSession.objects.get().card is None


@pytest.mark.django_db
def test_full_clean_refuses_a_plaintext_without_quoting_it():
    session = CallSession(call_sid="CA" + "0" * 32, card="8264")
    with pytest.raises(ValidationError) as refused:
        session.full_clean()
    assert refused.value.message_dict["card"] == ["This is not a sealed value."]
    session.card = session.seal("card", "8264")
    session.full_clean()


@pytest.mark.django_db
def test_a_token_moved_to_another_record_does_not_open():
    first, second = Account(number="AC1"), Account(number="AC2")
    first.set_credentials("8264", "5937")
    second.card_last4 = first.card_last4
    with pytest.raises(SealError):
        second.unseal("card_last4")


@pytest.mark.django_db
def test_a_card_token_does_not_open_as_a_pin():
    account = Account(number="AC1")
    account.set_credentials("8264", "5937")
    account.pin = account.card_last4
    with pytest.raises(SealError):
        account.unseal("pin")


def test_field_knows_its_purpose_and_survives_migrations():
    field = Account._meta.get_field("card_last4")
    assert isinstance(field, SealedField)
    assert field.purpose() == "accounts.Account.card_last4"
    _, _, _, kwargs = field.deconstruct()
    assert kwargs["context_field"] == "number"
    assert Account.sealed_fields() == [field, Account._meta.get_field("pin")]


@pytest.mark.django_db
def test_first_seal_records_each_key_check_value_never_the_key():
    get_keyring.cache_clear()
    Account(number="AC1").set_credentials("8264", "5937")
    records = dict(KeyRecord.objects.values_list("kid", "check_value"))
    assert records == {kid: key.check_value for kid, key in get_keyring().keys.items()}
    assert not any(check in ("22" * 32 + "11" * 32) for check in records.values())


@pytest.mark.django_db
def test_seal_counts_reach_the_database_in_batches():
    get_keyring.cache_clear()
    account = Account(number="AC1")
    account.seal("pin", "5937")  # the first seal records the ring and its count
    assert KeyRecord.objects.get(kid="test2").sealed_count == 1
    for _ in range(SEALS_PER_RECORD - 1):
        account.seal("pin", "5937")
    assert KeyRecord.objects.get(kid="test2").sealed_count == 1  # no write per seal
    account.seal("pin", "5937")
    assert KeyRecord.objects.get(kid="test2").sealed_count == 1 + SEALS_PER_RECORD


@pytest.mark.django_db
def test_a_record_lost_with_its_first_seals_transaction_is_made_again():
    get_keyring.cache_clear()
    account = Account(number="AC1")
    with pytest.raises(RuntimeError), transaction.atomic():
        account.seal("pin", "5937")  # records the ring, then the step fails
        raise RuntimeError("the step failed")
    assert not KeyRecord.objects.exists()
    for _ in range(SEALS_PER_RECORD):  # the next batch finds no record to count on...
        account.seal("pin", "5937")
    records = dict(KeyRecord.objects.values_list("kid", "check_value"))  # ...and makes it again
    assert records == {kid: key.check_value for kid, key in get_keyring().keys.items()}
    assert KeyRecord.objects.get(kid="test2").sealed_count == SEALS_PER_RECORD  # the batch's


@pytest.mark.django_db
def test_a_key_id_whose_bytes_changed_seals_nothing():
    KeyRecord.objects.create(kid="test2", check_value="0" * 16)
    get_keyring.cache_clear()
    with pytest.raises(KeyringError, match="'test2' now holds other bytes"):
        Account(number="AC1").seal("pin", "5937")


def test_digest_fields_name_purpose_and_source():
    card, pin = Account.digest_fields()
    assert (card.name, card.digest_purpose, card.source, card.salt_field) == (
        "card_digest",
        "accounts.Account.card_last4",
        "card_last4",
        "",
    )
    assert pin.message(Account(number="AC1"), "5937") == "AC1|5937"
    _, _, _, kwargs = pin.deconstruct()
    assert kwargs["purpose"] == "accounts.Account.pin" and kwargs["salt_field"] == "number"


def test_a_value_sealed_to_the_backend_is_stored_and_names_its_backend_key(backend_keys, db):
    from keys.sealed import sealed_by

    session = CallSession(call_sid="CA" + "7" * 32)
    with override_settings(SECUREGATHER_BACKEND_PUBLIC_KEYS=backend_keys.public_entry):
        sealed = session.seal_for_backend("card", "1234")
    session.save()
    stored = CallSession.objects.get(pk=session.pk).card
    assert stored == sealed and stored.backend_kid == "b1" and stored.key_id is None
    assert sealed_by(stored) == "backend:b1"
    assert "1234" not in repr(stored) + str(stored)
