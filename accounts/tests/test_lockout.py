"""The lockout as every channel meets it: through accounts.resolvers.resolve()."""

import threading
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from accounts import lockout
from accounts.models import Account, Lockout
from accounts.resolvers import Locked, resolve
from audit.models import AuditEvent
from conftest import START

CALLER = "+15005550006"


def fail(times, caller=CALLER, card="1234"):
    for _ in range(times):
        assert resolve(card, "0000", caller) is None


def lock(scope, key):
    return Lockout.objects.get(scope=scope, key=key)


def card(digits="1234"):
    return lock("card", lockout.card_key(digits))


@pytest.mark.django_db
def test_the_fifth_failure_within_a_day_locks_caller_and_card(demo_account, clock):
    fail(4)
    assert resolve("1234", "4321", CALLER) is not None  # not yet locked
    fail(1)
    with pytest.raises(Locked):
        resolve("1234", "4321", CALLER)
    assert lock("caller", CALLER).locked_until == START + timedelta(minutes=30)
    # The right PIN in between cleared neither: a stranger's count is never the owner's to
    # reset, or the owner's calls would hand strangers fresh tries.
    assert card().locked_until == START + timedelta(minutes=30) and len(card().failures) == 5


@pytest.mark.django_db
def test_a_lock_is_audited_once_with_scope_and_time(demo_account, clock):
    fail(5, card="9999")
    (event,) = AuditEvent.objects.filter(event="locked_out", detail__scope="caller")
    assert (event.outcome, event.caller, event.actor) == ("failure", "*" * 10 + "06", "twilio")
    assert event.detail["scope"] == "caller" and event.detail["failures"] == 5
    assert event.detail["until"] == (START + timedelta(minutes=30)).isoformat()


@pytest.mark.django_db
def test_locked_caller_with_the_right_pin_is_refused_without_a_pin_check(demo_account, clock):
    fail(5, card="9999")
    with (
        mock.patch.object(Account, "check_pin", autospec=True) as check,
        pytest.raises(Locked) as refused,
    ):
        resolve("1234", "4321", CALLER)
    assert check.call_count == 0
    assert (refused.value.scope, refused.value.until) == ("caller", START + timedelta(minutes=30))


@pytest.mark.django_db
def test_the_lock_lifts_after_30_minutes_and_the_lift_is_audited(demo_account, clock):
    fail(5, card="9999")
    clock.shift(timedelta(minutes=29, seconds=59))
    with pytest.raises(Locked):
        resolve("1234", "4321", CALLER)
    clock.shift(timedelta(seconds=1))
    assert resolve("1234", "4321", CALLER).account_number == "AC12345678"
    event = AuditEvent.objects.get(event="unlocked")
    assert (event.actor, event.detail) == ("system", {"scope": "caller", "reason": "expired"})


@pytest.mark.django_db
def test_an_expired_lock_is_cleared_in_the_database_and_audited_once(demo_account, clock):
    fail(5, card="9999")
    clock.shift(timedelta(minutes=30))
    # Successful calls save no counter of their own: the expiry is written when it is seen.
    assert resolve("1234", "4321", CALLER) is not None
    assert lock("caller", CALLER).locked_until is None
    assert resolve("1234", "4321", CALLER) is not None
    assert AuditEvent.objects.filter(event="unlocked").count() == 1


@pytest.mark.django_db
def test_failures_older_than_the_window_do_not_count(demo_account, clock):
    fail(4)
    clock.shift(timedelta(hours=24, seconds=1))
    fail(4)
    assert resolve("1234", "4321", CALLER) is not None
    clock.shift(timedelta(hours=1))
    fail(1)  # 5 within 24 h: 4 an hour ago and this one
    with pytest.raises(Locked):
        resolve("1234", "4321", CALLER)


@pytest.mark.django_db
def test_wrong_pins_from_many_callers_lock_the_account(demo_account, clock):
    for n in range(5):
        assert resolve("1234", "1111", f"+1500555000{n}") is None
    with pytest.raises(Locked) as refused:
        resolve("1234", "4321", "+15559990000")
    assert (refused.value.scope, refused.value.accounts) == ("card", ["AC12345678"])
    event = AuditEvent.objects.get(event="locked_out", detail__scope="card")
    assert event.account_number == "AC12345678"


def second_account_behind_the_card() -> None:
    """AC87654321: card 1234, as the demo account's, with a PIN of its own."""
    other = Account(number="AC87654321")
    other.set_credentials("1234", "9876")
    other.save()


@pytest.mark.django_db
def test_every_account_behind_a_card_shares_the_cards_counter(demo_account, clock):
    second_account_behind_the_card()
    fail(5, caller="")
    assert {(row.scope, row.key, len(row.failures)) for row in Lockout.objects.all()} == {
        ("card", lockout.card_key("1234"), 5),
        ("caller", "withheld", 5),
    }
    # The card's lock names every account it refuses for (staff-only rows).
    event = AuditEvent.objects.get(event="locked_out", detail__scope="card")
    assert event.account_number == "AC12345678"
    assert event.detail["accounts"] == ["AC12345678", "AC87654321"]
    with pytest.raises(Locked) as refused:
        resolve("1234", "9876", "+15559990000")
    assert refused.value.accounts == ["AC12345678", "AC87654321"]


def test_a_card_shared_by_many_accounts_is_one_counter(demo_account, clock):
    # Last 4 digits are far from unique: a step holds the card's one counter whatever their
    # number, so a step's statements do not grow with it either.
    for n in range(12):
        other = Account(number=f"AC9{n:07d}")
        other.set_credentials("1234", "9876")
        other.save()
    fail(1)
    assert sorted(Lockout.objects.values_list("scope", flat=True)) == ["caller", "card"]
    assert resolve("1234", "4321", CALLER).account_number == "AC12345678"


@pytest.mark.django_db
def test_callers_without_a_number_of_their_own_share_one_counter(clock, demo_account):
    # A fresh counter for each would be none: "anonymous" could guess forever.
    for caller in ["", "anonymous", "client:alice", "sip:bob@example.com", "+266696687"]:
        assert resolve("9999", "0000", caller) is None
    assert lock("caller", "withheld").locked_until == START + timedelta(minutes=30)
    with pytest.raises(Locked) as refused:
        resolve("5678", "0000", "5551234567")  # no "+": not E.164 either
    assert refused.value.scope == "caller"
    # A caller with a number of its own is not held by the shared lock.
    assert resolve("1234", "4321", "+15005550006").account_number == "AC12345678"


@pytest.mark.django_db
def test_an_unknown_card_locks_and_refuses_as_a_known_one(demo_account, clock):
    # "Too many attempts" must not tell a guesser that the card is someone's.
    for n in range(5):
        assert resolve("9999", "0000", f"+1555000000{n}") is None
        assert resolve("1234", "0000", f"+1555100000{n}") is None
    for digits in ["9999", "1234"]:
        with pytest.raises(Locked) as refused:
            resolve(digits, "0000", "+15559990000")
        assert (refused.value.scope, refused.value.until) == (
            "card",
            START + timedelta(minutes=30),
        )
    assert card("9999").failures == card("1234").failures


@pytest.mark.django_db
@override_settings(
    SECUREGATHER_LOCKOUT_FAILURES=2,
    SECUREGATHER_LOCKOUT_WINDOW=60,
    SECUREGATHER_LOCKOUT_DURATION=3600,
)
def test_limits_come_from_settings(demo_account, clock):
    fail(1, card="9999")
    clock.shift(timedelta(seconds=61))
    fail(1, card="9999")
    assert lock("caller", CALLER).locked_until is None
    fail(1, card="9999")
    assert lock("caller", CALLER).locked_until == START + timedelta(seconds=61 + 3600)


@pytest.mark.django_db
def test_lift_clears_lock_and_count_and_audits_who(demo_account, clock):
    fail(5)
    lifted = lockout.lift("AC12345678", by="ops@example.com")
    assert [row.scope for row in lifted] == ["card"]
    assert resolve("1234", "4321", "+15559990000") is not None
    event = AuditEvent.objects.get(event="unlocked")
    assert (event.actor, event.channel, event.account_number) == (
        "ops@example.com",
        "system",
        "AC12345678",
    )


@pytest.mark.django_db
def test_a_lift_whose_row_cannot_be_written_lifts_nothing(demo_account, clock):
    fail(5)
    with (
        mock.patch.object(AuditEvent, "record", side_effect=RuntimeError("log down")),
        pytest.raises(RuntimeError),
    ):
        lockout.lift("AC12345678", by="ops@example.com")
    assert card().locked_until is not None and len(card().failures) == 5


@pytest.mark.django_db
def test_a_failure_stores_times_only_no_digits(demo_account, clock, plaintext):
    fail(5, card="8264")
    plaintext.assert_absent("8264", "0000")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_lock_made_on_one_connection_holds_on_another(demo_account):
    def elsewhere():
        try:
            fail(5, card="9999")
        finally:
            connection.close()

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join()
    with pytest.raises(Locked):
        resolve("1234", "4321", CALLER)


class Counting:
    """A resolver that counts what reaches it and answers "not found", slowly."""

    calls = 0
    guard = threading.Lock()

    def resolve(self, card_last4, pin, caller):
        with Counting.guard:
            Counting.calls += 1
        threading.Event().wait(0.02)  # long enough for the others to pile up behind the lock
        return None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@override_settings(SECUREGATHER_RESOLVER="accounts.tests.test_lockout.Counting")
def test_concurrent_guesses_cannot_slip_past_the_limit(demo_account):
    Counting.calls = 0
    start, outcomes = threading.Barrier(10), []

    def guess():
        try:
            start.wait()
            outcomes.append(resolve("1234", "0000", CALLER))
        except Locked:
            outcomes.append("locked")
        finally:
            connection.close()

    threads = [threading.Thread(target=guess) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Counting.calls == 5
    assert sorted(map(str, outcomes)) == ["None"] * 5 + ["locked"] * 5
    assert AuditEvent.objects.filter(event="locked_out").count() == 2  # caller and card


@pytest.mark.django_db
def test_unknown_card_and_wrong_pin_cost_the_same_keyed_work(demo_account):
    from keys.keyring import Keyring

    def keyed_work(card, pin):
        with mock.patch.object(Keyring, "digest", autospec=True, side_effect=real) as digest:
            assert resolve(card, pin, "") is None
        return [call.args[2] for call in digest.call_args_list]  # the purposes, in order

    real = Keyring.digest
    assert keyed_work("9999", "4321") == keyed_work("1234", "0000")


@pytest.mark.django_db
def test_a_lock_is_audited_under_the_channel_that_made_it(demo_account, clock):
    for _ in range(5):
        resolve("1234", "0000", "", channel=AuditEvent.Channel.API, call_sid="CA" + "0" * 32)
    event = AuditEvent.objects.get(event="locked_out", detail__scope="card")
    assert (event.channel, event.account_number, event.call_sid) == (
        "api",
        "AC12345678",
        "CA" + "0" * 32,
    )


@pytest.mark.django_db
def test_after_a_lock_each_failure_within_the_window_locks_again(demo_account, clock):
    fail(5)
    clock.shift(timedelta(minutes=30))
    fail(1)  # one more try, not five
    with pytest.raises(Locked):
        resolve("1234", "4321", CALLER)
    assert card().locked_until == START + timedelta(minutes=60)
    locks = AuditEvent.objects.filter(event="locked_out").order_by("id")
    assert [e.detail["failures"] for e in locks] == [5, 5, 6, 6]  # caller and card, twice
    # Once a day has passed over the failures, the caller's count starts afresh, and the
    # card's 30-minute step too; the card's month still holds all 6.
    clock.shift(timedelta(hours=24))
    fail(3)
    assert resolve("1234", "4321", CALLER) is not None
    assert len(card().failures) == 9


@pytest.mark.django_db
def test_counters_are_created_in_the_order_they_are_locked(demo_account):
    # Any other order, which a set's differs between processes, can deadlock two steps.
    numbers = [f"AC{n:08d}|+15005550006" for n in (7, 3, 9, 1, 8, 2, 6)]
    keys = [("owner", number) for number in numbers] + [("caller", CALLER), ("card", "k1:ab")]
    created = []

    def watch(execute, sql, params, many, context):
        if sql.startswith("INSERT") and '"accounts_lockout"' in sql:
            # On PostgreSQL the rows come as one array per column (INSERT … SELECT FROM UNNEST).
            for param in params:
                for value in param if isinstance(param, list) else [param]:
                    if isinstance(value, str) and value in [CALLER, "k1:ab", *numbers]:
                        created.append(value)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(watch):
        counters = lockout.Counters.hold(keys)
    # Ordered by scope ("caller" < "card" < "owner"), then each scope's keys in order.
    assert created == [CALLER, "k1:ab", *sorted(numbers)]
    assert [row.key for row in counters.rows] == created


def checks_in_any_30_days(times):
    month = timedelta(days=30)
    return max(sum(start <= when < start + month for when in times) for start in times)


@pytest.mark.django_db
def test_the_tenth_failure_in_30_days_locks_the_card_until_the_oldest_leaves(demo_account, clock):
    # Four failures a day from fresh numbers stay under the day's lock: the month's stops them.
    for n in range(10):
        if n and n % 4 == 0:
            clock.shift(timedelta(days=1))
        assert resolve("1234", "0000", f"+1555000{n:04d}") is None
    assert card().locked_until == START + timedelta(days=30)
    clock.shift(timedelta(days=27, hours=23, minutes=59))  # 29 days 23:59 after the first
    with pytest.raises(Locked) as refused:
        resolve("1234", "4321", "+15559990000")
    assert refused.value.until == START + timedelta(days=30)
    clock.shift(timedelta(minutes=1))
    assert resolve("1234", "4321", "+15559990000").account_number == "AC12345678"
    event = AuditEvent.objects.filter(
        event="locked_out", detail__scope="card"
    ).first()  # the newest
    assert event.detail["failures"] == 10


@pytest.mark.django_db
@pytest.mark.parametrize("every", [timedelta(minutes=31), timedelta(hours=5), timedelta(days=2)])
def test_no_30_days_hold_more_than_10_pin_checks_whatever_the_pacing(demo_account, clock, every):
    checked = []
    for n in range(int(timedelta(days=60) / every)):
        caller = f"+1555{n:07d}"  # a fresh number each time
        try:
            channel = AuditEvent.Channel.API if n % 2 else AuditEvent.Channel.VOICE
            assert resolve("1234", "0000", caller, channel=channel) is None
            checked.append(timezone.now())
        except Locked:
            pass
        clock.shift(every)
    assert checks_in_any_30_days(checked) <= 10
    assert len(checked) >= 10  # the bound was reached, not dodged


@pytest.mark.django_db
def test_voice_and_api_count_on_the_same_card(demo_account, clock):
    for n in range(3):
        resolve("1234", "0000", f"+1555000000{n}")
    for _ in range(2):
        resolve("1234", "0000", "", channel="api", caller_counter=lockout.api_caller("t"))
    with pytest.raises(Locked) as refused:
        resolve("1234", "4321", "+15559990000")
    assert refused.value.scope == "card"
    assert len(lock("caller", lockout.api_caller("t")).failures) == 2


def test_api_callers_are_named_by_a_digest_of_their_token_never_the_token():
    assert lockout.api_caller("s3cret-token") != lockout.api_caller("other-token")
    assert "s3cret" not in lockout.api_caller("s3cret-token")
    assert lockout.api_caller("") == "api:open"


@pytest.mark.django_db
def test_lift_finds_a_caller_number_in_any_spelling(demo_account, clock):
    fail(5, card="9999")
    (row,) = lockout.lift("+1 (500) 555-0006", by="ops")
    assert (row.scope, row.key) == ("caller", CALLER)
    assert lock("caller", CALLER).locked_until is None
