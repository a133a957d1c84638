import threading
from datetime import timedelta

import pytest
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import lockout
from accounts.models import GuessingWindow, Lockout
from accounts.resolvers import resolve
from audit.models import AuditEvent
from calls.management.commands import purge_sessions as purge
from calls.management.commands.purge_sessions import purge_sessions
from calls.models import CallSession
from conftest import START

pytestmark = pytest.mark.django_db


def test_a_call_whose_status_never_came_is_ended_and_wiped(call, clock, plaintext):
    call.start()
    call.card("8264")
    clock.shift(timedelta(minutes=11))
    assert purge_sessions()["ended"] == 1
    session = CallSession.objects.get()
    assert (session.card, session.outcome, session.last_answer) == (None, "expired", "")
    assert session.ended_at == START + timedelta(minutes=11)
    # The call's own trail says how it ended, with no status callback.
    event = AuditEvent.objects.get(event="session_expired")
    assert (event.call_sid, event.actor, event.detail) == (
        call.call_sid,
        "system",
        {"ended_by": "purge_sessions"},
    )
    assert event.caller.endswith(call.caller[-2:]) and event.caller != call.caller
    plaintext.assert_absent("8264")


def test_a_live_call_is_left_alone(call, clock):
    call.start()
    call.card("8264")
    clock.shift(timedelta(minutes=9))
    assert purge_sessions() == {"ended": 0, "deleted": 0, "counters": 0, "staff_sessions": 0}
    assert CallSession.objects.get().card is not None


def test_sessions_past_24_hours_are_deleted(call, clock):
    call.start()
    call.status()
    clock.shift(timedelta(hours=23))
    call.call_sid = "CA" + "01" * 16
    call.start()
    clock.shift(timedelta(hours=1, seconds=1))
    assert purge_sessions()["deleted"] == 1
    assert list(CallSession.objects.values_list("call_sid", flat=True)) == [call.call_sid]


def test_idle_lockout_counters_go_but_live_locks_stay(demo_account, clock):
    resolve("8888", "0000", "+15550000001")
    for _ in range(5):
        resolve("9999", "0000", "+15550000002")
    clock.shift(timedelta(hours=24, seconds=1))
    resolve("7777", "0000", "+15550000003")
    Lockout.objects.filter(key="+15550000002").update(locked_until=START + timedelta(days=2))
    assert purge_sessions()["counters"] == 1
    assert set(Lockout.objects.values_list("key", flat=True)) == {
        "+15550000002",
        "+15550000003",
        # A card's failures count for 30 days.
        *(lockout.card_key(card) for card in ["7777", "8888", "9999"]),
    }


def test_a_cards_counter_goes_once_its_failures_stop_counting(demo_account, clock):
    resolve("9999", "0000", "+15550000001")
    clock.shift(timedelta(days=30) - timedelta(seconds=1))
    purge_sessions()
    assert Lockout.objects.filter(scope="card").exists()
    clock.shift(timedelta(seconds=2))
    purge_sessions()
    assert not Lockout.objects.exists()


def test_the_guessing_watchs_past_windows_go(demo_account, clock, settings):
    settings.SECUREGATHER_GUESSING_WINDOW = 3600
    resolve("9999", "0000", "+15550000001")
    clock.shift(timedelta(hours=1))
    resolve("9999", "0000", "+15550000001")
    clock.shift(timedelta(hours=1, seconds=1))
    purge_sessions()
    # The window before this one stays: /healthz reads it.
    assert list(GuessingWindow.objects.values_list("start", flat=True)) == [
        START + timedelta(hours=1)
    ]


def test_the_command_reports_and_audits_what_it_did(call, clock, capsys):
    call.start()
    clock.shift(timedelta(days=2))
    call_command("purge_sessions")
    assert capsys.readouterr().out == (
        "Ended 1 stale call(s), deleted 1 session(s) past retention, "
        "0 idle lockout counter(s) and 0 expired admin session(s).\n"
    )
    event = AuditEvent.objects.get(event="sessions_purged")
    assert (event.actor, event.channel, event.detail) == (
        "system",
        "system",
        {"ended": 1, "deleted": 1, "counters": 0, "staff_sessions": 0},
    )


def make_session(n: int, **fields) -> CallSession:
    """A call that got as far as its PIN (or further, with ``fields``), then heard no more."""
    values = {
        "account_sid": "AC" + "cd" * 16,
        "caller": "+15005550006",
        "attestation": "",
        "language": "es",
        "state": CallSession.State.AWAITING_PIN,
        "tries": 1,
        "idempotency_token": f"token-{n}",
        "last_answer": "<Response/>",
    }
    session = CallSession(call_sid=f"CA{n:032x}", **{**values, **fields})
    session.seal("card", "8264")
    session.seal("pin", "1357")
    return session


def columns(session: CallSession) -> dict:
    return {
        f.attname: getattr(session, f.attname)
        for f in CallSession._meta.concrete_fields
        if f.attname not in ("id", "call_sid")
    }


def end_one_by_one(session: CallSession) -> None:
    """How a stale call used to be ended: row by row, through the model."""
    if not session.is_finished:
        session.finish(CallSession.Outcome.EXPIRED)
    session.end()
    session.save()


VERIFIED = {"state": "finished", "outcome": "verified", "account_number": "AC12345678"}


def test_a_batch_writes_what_ending_each_row_through_the_model_wrote(clock):
    reference, ended, reference_done, done = CallSession.objects.bulk_create(
        [make_session(1), make_session(2), make_session(3, **VERIFIED), make_session(4, **VERIFIED)]
    )
    clock.shift(timedelta(minutes=11))
    for session in CallSession.objects.filter(pk__in=[reference.pk, reference_done.pk]):
        end_one_by_one(session)
    assert purge_sessions()["ended"] == 2
    now = START + timedelta(minutes=11)
    common = {
        "account_sid": "AC" + "cd" * 16,
        "caller": "+15005550006",
        "caller_digest": "",  # made by bulk_create, not by a call's first step
        "attestation": "",
        "language": "es",
        "tries": 1,
        "card": None,
        "pin": None,
        "idempotency_token": "",
        "last_answer": "",
        "created_at": START,
        "updated_at": now,
        "ended_at": now,
    }
    expired = {"state": "finished", "outcome": "expired", "account_number": ""}
    for old, new, outcome in ((reference, ended, expired), (reference_done, done, VERIFIED)):
        old.refresh_from_db()
        new.refresh_from_db()
        assert columns(new) == {**common, **outcome}
        assert columns(old) == columns(new)


def test_every_step_runs_in_batches_and_the_totals_add_up(clock, monkeypatch, plaintext):
    monkeypatch.setattr("calls.management.commands.purge_sessions.BATCH", 3)
    monkeypatch.setattr("staff.sessions.BATCH", 3)  # admin sessions: the session store's
    old = CallSession.objects.bulk_create([make_session(n) for n in range(100, 107)])
    CallSession.objects.filter(pk__in=[s.pk for s in old]).update(ended_at=START)
    Lockout.objects.bulk_create([Lockout(scope="caller", key=f"+1555000{n:04d}") for n in range(5)])
    staff = User.objects.create_user("ops")
    for n in range(4):  # admin sessions, two signed in, all to expire
        session = SessionStore()
        session.update({SESSION_KEY: str(staff.pk)} if n % 2 else {"seen": True})
        session.create()
    clock.shift(timedelta(hours=23))
    stale = [make_session(n, **VERIFIED) if n % 3 == 0 else make_session(n) for n in range(8)]
    CallSession.objects.bulk_create(stale)
    clock.shift(timedelta(hours=1, seconds=1))
    with CaptureQueriesContext(connection) as queries:
        counts = purge_sessions()
    assert counts == {"ended": 8, "deleted": 7, "counters": 5, "staff_sessions": 4}
    now = START + timedelta(hours=24, seconds=1)
    rows = CallSession.objects.order_by("pk")
    assert [(s.card, s.pin, s.last_answer, s.ended_at) for s in rows] == [(None, None, "", now)] * 8
    assert [s.outcome for s in rows] == ["verified", "expired", "expired"] * 2 + [
        "verified",
        "expired",
    ]
    assert not Lockout.objects.exists()
    plaintext.assert_absent("8264", "1357")
    event = AuditEvent.objects.get(event="sessions_purged")
    assert event.detail == counts
    sql = [query["sql"] for query in queries.captured_queries]
    # Three batches of at most three rows, each at most one UPDATE per kind of call...
    updates = [s for s in sql if s.startswith('UPDATE "calls_callsession"')]
    assert 3 <= len(updates) <= 6
    # ...seven old sessions in three DELETEs, five counters in two...
    assert sum(s.startswith('DELETE FROM "calls_callsession"') for s in sql) == 3
    assert sum(s.startswith('DELETE FROM "accounts_lockout"') for s in sql) == 2
    # ...four admin sessions in two, a staff_logout row for each signed-in one...
    assert sum(s.startswith('DELETE FROM "django_session"') for s in sql) == 2
    assert AuditEvent.objects.filter(event="staff_logout", actor="ops").count() == 2
    # ...and no whole row read: only keys (and a call's state).
    assert not [s for s in sql if s.startswith("SELECT") and '"card"' in s]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_call_a_step_holds_is_skipped_not_waited_for():
    if connection.vendor != "postgresql":
        pytest.skip("row locks (SELECT ... FOR UPDATE SKIP LOCKED) need PostgreSQL")
    sessions = CallSession.objects.bulk_create([make_session(n) for n in range(5)])
    CallSession.objects.update(created_at=timezone.now() - timedelta(hours=1))
    held = sessions[2]
    locked, release = threading.Event(), threading.Event()

    def status_callback_in_progress() -> None:
        try:
            with transaction.atomic():
                CallSession.objects.select_for_update().get(pk=held.pk)
                locked.set()
                release.wait(timeout=10)  # bounded: a purge that waits never says release
        finally:
            connections.close_all()

    step = threading.Thread(target=status_callback_in_progress)
    step.start()
    try:
        assert locked.wait(timeout=5)
        with connection.cursor() as cursor:
            # A purge that waits on the held row fails here instead of hanging the suite.
            cursor.execute("SET lock_timeout = '3s'")
        counts = purge_sessions()
    finally:
        release.set()
        step.join(timeout=10)
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
    assert not step.is_alive()
    assert counts == {"ended": 4, "deleted": 0, "counters": 0, "staff_sessions": 0}
    left = CallSession.objects.get(pk=held.pk)
    assert (left.ended_at, left.card is None) == (None, False)
    assert CallSession.objects.filter(ended_at=None).count() == 1
    assert purge_sessions()["ended"] == 1  # the next run ends it, the lock released


def test_a_purge_stopped_halfway_records_what_its_committed_batches_did(call, clock, monkeypatch):
    for n in range(3):
        call.call_sid = f"CA{n:032x}"
        call.start()
        call.status()
    clock.shift(timedelta(hours=25))
    monkeypatch.setattr("calls.management.commands.purge_sessions.BATCH", 1)
    delete = purge._delete_rows
    calls = []

    def fails_on_the_second_batch(rows, batch):
        calls.append(batch)
        if len(calls) == 2:
            raise RuntimeError("connection lost")
        return delete(rows, batch)

    monkeypatch.setattr(purge, "_delete_rows", fails_on_the_second_batch)
    with pytest.raises(RuntimeError):
        purge_sessions()
    assert CallSession.objects.count() == 2  # the first batch's delete stays
    row = AuditEvent.objects.get(event="sessions_purged")
    assert (row.outcome, row.detail) == (
        "failure",
        {"ended": 0, "deleted": 1, "counters": 0, "staff_sessions": 0, "stopped": True},
    )


def _wait_for_a_lock_wait() -> bool:
    """Whether another connection of this database came to wait on a row lock (bounded poll)."""
    with connections["default"].cursor() as cursor:
        for _ in range(1000):
            # A transaction sees one snapshot of pg_stat_activity unless it asks for another.
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database() AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0]:
                return True
            threading.Event().wait(0.01)
    return False


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_failure_counted_while_its_idle_counter_is_purged_still_counts(demo_account, monkeypatch):
    caller = "+15550000009"
    assert resolve("1234", "0000", caller) is None
    # Both counters idle for longer than their failures count: the purge deletes them.
    Lockout.objects.update(failures=[], updated_at=timezone.now() - timedelta(days=31))
    guess: list[object] = []

    def wrong_pin() -> None:
        try:
            guess.append(resolve("1234", "0000", caller))
        finally:
            connections.close_all()

    delete, thread = purge._delete_rows, threading.Thread(target=wrong_pin)

    def delete_while_a_verification_waits(rows, batch):
        # The purge holds the counters' row locks: a verification starting now waits on them.
        if rows.model is Lockout and not thread.is_alive():
            thread.start()
            assert _wait_for_a_lock_wait()
        return delete(rows, batch)

    monkeypatch.setattr(purge, "_delete_rows", delete_while_a_verification_waits)
    assert purge_sessions()["counters"] == 2
    thread.join(timeout=30)
    assert guess == [None]
    # The wrong PIN is counted on the caller and on the card, as any other is.
    assert sorted((row.scope, row.key, len(row.failures)) for row in Lockout.objects.all()) == [
        ("caller", caller, 1),
        ("card", lockout.card_key("1234"), 1),
    ]
