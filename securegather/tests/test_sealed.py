import pytest
from django.db import connection

from accounts.models import Account
from securegather.keyring import KeyringError, SealError, get_keyring
from securegather.models import KeyRecord
from securegather.sealed import MASK, SEALS_PER_RECORD, Sealed, SealedField


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
