"""The owner's own counter: a registered number with full SHAKEN/STIR attestation."""

from datetime import timedelta

import pytest

from accounts import lockout
from accounts.models import Lockout
from accounts.resolvers import Locked, resolve
from audit.models import AuditEvent
from conftest import START

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]
OWNER = "+15005550006"
A, B = "TN-Validation-Passed-A", "TN-Validation-Passed-B"


@pytest.fixture
def registered(demo_account):
    demo_account.caller_numbers = [OWNER]
    demo_account.save()
    return demo_account


def strangers_lock_the_card(clock):
    """Ten failures from ten numbers, paced past each 30-minute lock: locked for the month."""
    for n in range(10):
        assert resolve("1234", "0000", f"+1555000000{n}") is None
        clock.shift(timedelta(minutes=31))


def owner_row():
    return Lockout.objects.get(scope="owner", key=lockout.owner_key("AC12345678", OWNER))


def card_row():
    return Lockout.objects.get(scope="card", key=lockout.card_key("1234"))


def test_strangers_do_not_lock_out_the_attested_owner(registered, clock):
    strangers_lock_the_card(clock)
    assert card_row().locked_until == START + timedelta(days=30)
    resolution = resolve("1234", "4321", OWNER, attestation=A)
    assert resolution.account_number == "AC12345678"


def test_strangers_spoofing_the_owners_number_do_not_lock_the_attested_owner(registered):
    # Without attestation the owner's number is anyone's: its caller counter locks…
    for _ in range(5):
        assert resolve("1234", "0000", OWNER) is None
    with pytest.raises(Locked):
        resolve("1234", "4321", OWNER)
    # …and the owner, vouched for by the carrier, counts on its own.
    assert resolve("1234", "4321", OWNER, attestation=A).account_number == "AC12345678"


@pytest.mark.parametrize("attestation", ["", B, "TN-Validation-Failed-A", "No-TN-Validation"])
def test_anything_short_of_full_attestation_is_a_stranger(registered, clock, attestation):
    strangers_lock_the_card(clock)
    with pytest.raises(Locked) as refused:
        resolve("1234", "4321", OWNER, attestation=attestation)
    assert refused.value.scope == "card"


def test_an_attested_number_not_registered_on_the_account_is_a_stranger(registered, clock):
    strangers_lock_the_card(clock)
    with pytest.raises(Locked):
        resolve("1234", "4321", "+15557777777", attestation=A)


def test_the_owners_own_failures_lock_it_and_count_on_the_card(registered):
    for _ in range(5):
        assert resolve("1234", "0000", OWNER, attestation=A) is None
    with pytest.raises(Locked) as refused:
        resolve("1234", "4321", OWNER, attestation=A)
    assert (refused.value.scope, refused.value.accounts) == ("owner", ["AC12345678"])
    assert len(card_row().failures) == 5  # a phone in other hands adds no tries to the card
    event = AuditEvent.objects.get(event="locked_out", detail__scope="owner")
    assert (event.account_number, event.caller) == ("AC12345678", "*" * 10 + "06")


def test_the_owners_success_clears_its_own_counter_only(registered):
    for n in range(3):
        resolve("1234", "0000", f"+1555000000{n}")
    for _ in range(4):
        resolve("1234", "0000", OWNER, attestation=A)
    assert resolve("1234", "4321", OWNER, attestation=A) is not None
    assert owner_row().failures == []
    assert len(card_row().failures) == 7  # strangers get no fresh tries from it


def test_the_owner_counter_has_the_months_ceiling(registered, clock):
    for _ in range(10):
        clock.shift(timedelta(days=1))
        assert resolve("1234", "0000", OWNER, attestation=A) is None
    assert owner_row().locked_until == START + timedelta(days=31)


def test_lifting_an_account_lifts_its_card_and_owner_counters(registered, clock):
    strangers_lock_the_card(clock)
    for _ in range(5):
        resolve("1234", "0000", OWNER, attestation=A)
    lifted = lockout.lift("AC12345678", by="ops")
    assert sorted(row.scope for row in lifted) == ["card", "owner"]
    # Unattested now: the card's counter, lifted, lets the owner in.
    assert resolve("1234", "4321", OWNER).account_number == "AC12345678"
