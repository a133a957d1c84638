import io
import threading
from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError, OutputWrapper
from django.db import connection, connections
from django.test import override_settings

from accounts.models import Account
from accounts.resolvers import DatabaseResolver
from audit.models import AuditEvent
from calls.models import CallSession
from conftest import FakeCall, TwilioClient, spoken
from keys import rotation
from keys.keyring import get_keyring
from keys.models import KeyRecord
from keys.rotation import columns
from keys.sealed import record_key_use

pytestmark = pytest.mark.django_db

TEST2 = "test2:" + "22" * 32
TEST1 = "test1:" + "11" * 32
NEW = "k3:" + "33" * 32
ROTATING = f"{NEW},{TEST2},{TEST1}"  # the new key first, the old ones still present
ROTATED = NEW  # the old keys removed


def rotate_keys(*args: str) -> str:
    out = io.StringIO()
    call_command("rotate_keys", *args, stdout=out)
    return out.getvalue()


def kids_in_database() -> set[str]:
    return {kid for column in columns() for kid in column.counts()}


def make_accounts(count: int) -> None:
    for n in range(count):
        account = Account(number=f"AC{n:08d}", balance=n)
        account.set_credentials(f"{n % 10_000:04d}", "5937")
        account.save()


def test_rotation_then_old_key_removed_keeps_every_flow_working(call, demo_account, plaintext):
    call.start()
    call.card("1234")  # this call's card is sealed under test2 and waits for the PIN
    assert kids_in_database() == {"test2"}
    with override_settings(SECUREGATHER_KEYS=ROTATING):
        output = rotate_keys()
    assert "accounts.Account.card_last4: 1 rotated" in output
    assert "accounts.Account.pin_digest: 1 rotated" in output
    assert "calls.CallSession.card: 1 rotated" in output
    assert kids_in_database() == {"k3"}

    with override_settings(SECUREGATHER_KEYS=ROTATED):
        assert "AC12345678" in spoken(call.pin("4321"))
        again = FakeCall(call.twilio, call_sid="CA" + "ef" * 16)
        again.start()
        again.card("1234")
        assert "AC12345678" in spoken(again.pin("4321"))
        wrong = FakeCall(call.twilio, call_sid="CA" + "01" * 16)
        wrong.start()
        wrong.card("1234")
        assert "not able to locate" in spoken(wrong.pin("0000"))
    plaintext.assert_absent("1234", "4321")


def test_rotation_is_audited_under_the_new_key(demo_account):
    with override_settings(SECUREGATHER_KEYS=ROTATING):
        rotate_keys()
    event = AuditEvent.objects.get(event="key_rotated")
    assert (event.actor, event.channel, event.key_id, event.outcome) == (
        "system",
        "system",
        "k3",
        "success",
    )
    assert event.detail["rotated"]["accounts.Account.pin"] == 1
    assert event.detail["remaining"] == 0


def test_a_second_run_has_nothing_to_do(demo_account):
    with override_settings(SECUREGATHER_KEYS=ROTATING):
        rotate_keys()
        token = Account.objects.get().card_last4.token
        assert "Rotated 0 values in 0 rows" in rotate_keys()
        assert Account.objects.get().card_last4.token == token
    # A run that changed nothing records no rotation.
    assert AuditEvent.objects.filter(event="key_rotated").count() == 1


def test_dry_run_counts_and_changes_nothing(demo_account):
    with override_settings(SECUREGATHER_KEYS=ROTATING):
        output = rotate_keys("--dry-run")
    assert "accounts.Account.card_last4: 1 under 'test2' would rotate" in output
    assert "Dry run: 4 values would move to 'k3'." in output
    assert kids_in_database() == {"test2"}
    assert not AuditEvent.objects.filter(event="key_rotated").exists()


def test_a_dry_run_counts_digests_by_whether_their_sealed_value_opens(db):
    make_accounts(2)  # under test2, the tests' primary
    with override_settings(SECUREGATHER_KEYS=f"{TEST1},{TEST2}"):
        account = Account(number="AC99999999", balance=1)
        account.set_credentials("1111", "2222")
        account.save()  # under test1
    # A ring without test1: its digests cannot be derived again, as their PINs stay sealed.
    with override_settings(SECUREGATHER_KEYS=f"{NEW},{TEST2}"):
        output = rotate_keys("--dry-run")
    assert "accounts.Account.pin_digest: 2 under 'test2' would rotate" in output
    assert (
        "accounts.Account.pin_digest: 1 under 'test1' cannot rotate "
        "(its sealed value is missing or under no active key)"
    ) in output
    assert "Dry run: 8 values would move to 'k3'." in output


def test_a_run_killed_after_its_first_batch_resumes_on_rerun(db):
    make_accounts(25)
    write = rotation._write
    calls = []

    def dies_after_first_batch(*args, **kwargs):
        if calls:
            raise KeyboardInterrupt  # as a kill would, between two batches
        calls.append(1)
        write(*args, **kwargs)

    with override_settings(SECUREGATHER_KEYS=ROTATING):
        with (
            mock.patch.object(rotation, "_write", side_effect=dies_after_first_batch),
            pytest.raises(KeyboardInterrupt),
        ):
            rotate_keys("--batch-size", "10")
        pins = [sealed.key_id for sealed in Account.objects.values_list("pin", flat=True)]
        assert pins.count("k3") == 10 and pins.count("test2") == 15  # the first batch committed
        output = rotate_keys("--batch-size", "10")
    assert "Rotated 60 values in 15 rows" in output
    assert kids_in_database() == {"k3"}
    with override_settings(SECUREGATHER_KEYS=ROTATED):
        assert all(
            account.check_pin("5937") and account.unseal("pin") == "5937"
            for account in Account.objects.all()
        )


def test_values_no_key_opens_are_reported_and_left_alone(demo_account):
    with override_settings(SECUREGATHER_KEYS=f"{NEW},{TEST1}"):  # test2 is gone
        out = io.StringIO()
        with pytest.raises(CommandError, match="Values are left under keys the ring cannot use"):
            call_command("rotate_keys", stdout=out)
        output = out.getvalue()
        assert "1 rows hold values no active key opens" in output
        assert "accounts.Account.pin: 1 under 'test2', a key id the ring lacks" in output
        assert AuditEvent.objects.get(event="key_rotated").outcome == "failure"
    assert Account.objects.get().card_last4.key_id == "test2"


def test_terminal_gets_a_progress_bar_and_a_pipe_plain_counts(db):
    make_accounts(3)
    with override_settings(SECUREGATHER_KEYS=ROTATING):
        plain = rotate_keys("--batch-size", "1")
        assert "\r" not in plain and "3/3 rows rotated" in plain
    with override_settings(SECUREGATHER_KEYS=f"k4:{'44' * 32},{NEW}"):
        out = io.StringIO()
        out.isatty = lambda: True
        call_command("rotate_keys", "--batch-size", "1", stdout=out)
    assert "\r[" in out.getvalue() and "100% 3/3 rows" in out.getvalue()


def test_rows_that_arrive_during_a_run_grow_the_count_they_are_shown_against():
    from keys.management.commands.rotate_keys import Progress

    out = io.StringIO()
    out.isatty = lambda: True  # the bar, redrawn at each batch
    progress = Progress(OutputWrapper(out))
    for done in (1, 2, 3):  # two rows counted at the start, a third sealed since
        progress(done, 2)
    assert out.getvalue().split("\r")[-1] == f"[{'#' * 30}] 100% 3/3 rows"
    assert "3/2" not in out.getvalue()


def test_a_key_whose_bytes_changed_stops_rotation(demo_account):
    KeyRecord.objects.update_or_create(kid="k3", defaults={"check_value": "0" * 16})
    with (
        override_settings(SECUREGATHER_KEYS=ROTATING),
        pytest.raises(CommandError, match="'k3' holds other bytes"),
    ):
        rotate_keys()
    assert kids_in_database() == {"test2"}


def test_batch_size_must_be_positive(db):
    with pytest.raises(CommandError, match="at least 1"):
        rotate_keys("--batch-size", "0")


SUCCESS = "Thank you. Your account number is AC12345678 and your balance is 12.55"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_session_a_call_step_holds_is_not_overwritten(demo_account):
    if connection.vendor != "postgresql":
        pytest.skip("row locks (SELECT ... FOR UPDATE SKIP LOCKED) need PostgreSQL")
    call = FakeCall(TwilioClient())
    call.start()
    call.card("1234")  # sealed under test2
    locked, go = threading.Event(), threading.Event()
    resolve_among = DatabaseResolver.resolve_among
    heard: list[str] = []

    def resolve_slowly(self, *args):
        locked.set()  # the PIN step holds the session's row lock from here to its commit
        go.wait(timeout=3)  # bounded: a rotation that waits on the lock never says go
        return resolve_among(self, *args)

    def pin_step():
        try:
            heard.append(spoken(call.pin("4321")))
        finally:
            connections.close_all()

    def let_the_step_commit():
        go.set()
        step.join()

    step = threading.Thread(target=pin_step)
    with (
        override_settings(SECUREGATHER_KEYS=ROTATING),
        mock.patch.object(DatabaseResolver, "resolve_among", resolve_slowly),
        mock.patch.object(rotation, "_wait_for_locked_rows", side_effect=let_the_step_commit),
    ):
        # The ring is in use already: the step's first seal records nothing (no KeyRecord write
        # for rotation to wait on), as in a process that has served calls before.
        record_key_use(get_keyring())
        step.start()
        assert locked.wait(timeout=5)
        rotate_keys()  # skips the locked session, lets the step commit, then finds it wiped
        let_the_step_commit()
    assert heard == [SUCCESS]
    session = CallSession.objects.get()
    assert (session.card, session.pin) == (None, None)  # no rotated card written over the wipe
    assert kids_in_database() == {"k3"}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_calls_served_during_rotation_all_succeed(demo_account):
    if connection.vendor != "postgresql":
        pytest.skip("row locks (SELECT ... FOR UPDATE SKIP LOCKED) need PostgreSQL")
    make_accounts(300)  # enough rows that rotation and calls overlap
    sids = [f"CA{n:032x}" for n in range(1, 13)]
    twilio = TwilioClient()
    for sid in sids:  # calls waiting for their PIN, their cards sealed under test2
        call = FakeCall(twilio, call_sid=sid)
        call.start()
        call.card("1234")
    results: list[str] = []
    errors: list[BaseException] = []

    def caller(sid: str) -> None:
        try:
            results.append(spoken(FakeCall(TwilioClient(), call_sid=sid).pin("4321")))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    with override_settings(SECUREGATHER_KEYS=ROTATING):
        threads = [threading.Thread(target=caller, args=(sid,)) for sid in sids]
        for thread in threads[:6]:
            thread.start()
        rotate_keys("--batch-size", "7")
        for thread in threads[6:]:
            thread.start()
        for thread in threads:
            thread.join()
        rotate_keys()  # picks up anything a call held locked during the first run
    assert errors == []
    assert (
        results == ["Thank you. Your account number is AC12345678 and your balance is 12.55"] * 12
    )
    assert kids_in_database() == {"k3"}
    assert CallSession.objects.filter(outcome="verified").count() == 12
    # No rotated token was written over a card a call step had wiped meanwhile.
    assert not CallSession.objects.filter(card__isnull=False).exists()


def test_a_dry_run_tells_a_retired_key_from_one_the_ring_lacks(demo_account):
    with override_settings(SECUREGATHER_KEYS=f"{NEW},{TEST2}:retired,{TEST1}"):
        retired = rotate_keys("--dry-run")
    assert "pin: 1 under 'test2' cannot rotate (key retired in the ring)" in retired
    # A digest is derived again from its sealed value, which no active key opens here either.
    unopened = "1 under 'test2' cannot rotate (its sealed value is missing or under no active key)"
    assert f"accounts.Account.pin_digest: {unopened}" in retired
    assert "would rotate" not in retired
    assert "Dry run: 0 values would move to 'k3'." in retired
    with override_settings(SECUREGATHER_KEYS=f"{NEW},{TEST1}"):
        lacking = rotate_keys("--dry-run")
    assert "pin: 1 under 'test2' cannot rotate (key not in the ring)" in lacking


def test_a_value_sealed_to_the_backend_is_left_as_it_is(call, backend_keys):
    with override_settings(**backend_keys.settings()):
        call.start()
        call.card("1234")
    token = CallSession.objects.get().card.token
    with override_settings(SECUREGATHER_KEYS=ROTATING):
        output = rotate_keys()
    assert "calls.CallSession.card: 1 rotated" not in output
    assert CallSession.objects.get().card.token == token
    assert kids_in_database() == set()
