from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import call_command

from accounts.models import Lockout
from accounts.resolvers import resolve
from calls.management.commands.purge_sessions import purge_sessions
from calls.models import CallSession
from securegather.models import AuditEvent

pytestmark = pytest.mark.django_db
START = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def test_a_call_whose_status_never_came_is_ended_and_wiped(call, clock, plaintext):
    call.start()
    call.card("8264")
    clock.shift(timedelta(minutes=11))
    assert purge_sessions()["ended"] == 1
    session = CallSession.objects.get()
    assert (session.card, session.outcome, session.last_answer) == (None, "expired", "")
    assert session.ended_at == START + timedelta(minutes=11)
    plaintext.assert_absent("8264")


def test_a_live_call_is_left_alone(call, clock):
    call.start()
    call.card("8264")
    clock.shift(timedelta(minutes=9))
    assert purge_sessions() == {"ended": 0, "deleted": 0, "counters": 0}
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
    resolve("9999", "0000", "+15550000001")
    for _ in range(5):
        resolve("9999", "0000", "+15550000002")
    clock.shift(timedelta(hours=24, seconds=1))
    resolve("9999", "0000", "+15550000003")
    Lockout.objects.filter(key="+15550000002").update(locked_until=START + timedelta(days=2))
    assert purge_sessions()["counters"] == 1
    assert set(Lockout.objects.values_list("key", flat=True)) == {"+15550000002", "+15550000003"}


def test_the_command_reports_and_audits_what_it_did(call, clock, capsys):
    call.start()
    clock.shift(timedelta(days=2))
    call_command("purge_sessions")
    assert capsys.readouterr().out == (
        "Ended 1 stale call(s), deleted 1 session(s) past retention "
        "and 0 idle lockout counter(s).\n"
    )
    event = AuditEvent.objects.get(event="sessions_purged")
    assert (event.actor, event.channel, event.detail) == (
        "system",
        "system",
        {"ended": 1, "deleted": 1, "counters": 0},
    )
