"""A call's steps are refused once its session is past its lifetime (10 minutes by default)."""

from datetime import timedelta

import pytest
from django.test import override_settings

from audit.models import AuditEvent
from calls.models import CallSession
from conftest import gather, hangs_up, spoken

pytestmark = pytest.mark.django_db
TIMED_OUT = "Sorry, this call has timed out. Please call again. Goodbye."


def test_a_pin_after_ten_minutes_is_refused_and_the_card_wiped(call, demo_account, clock):
    call.start()
    call.card("1234")
    clock.shift(timedelta(minutes=10))
    response = call.pin("4321")
    assert spoken(response) == TIMED_OUT and hangs_up(response)
    session = CallSession.objects.get()
    assert (session.state, session.outcome, session.card, session.pin) == (
        "finished",
        "expired",
        None,
        None,
    )
    event = AuditEvent.objects.get(event="session_expired")
    assert event.detail == {"step": "pin"}
    assert not AuditEvent.objects.filter(event__in=["pin_entered", "verified"]).exists()


def test_a_step_just_inside_the_lifetime_is_served(call, demo_account, clock):
    call.start()
    call.card("1234")
    clock.shift(timedelta(minutes=9, seconds=59))
    assert "AC12345678" in spoken(call.pin("4321"))


def test_an_expired_call_stays_refused(call, clock):
    call.start()
    clock.shift(timedelta(minutes=11))
    call.card("8264")
    response = call.card("8264")
    assert "already been handled" in spoken(response)
    assert AuditEvent.objects.filter(event="session_expired").count() == 1


@override_settings(SECUREGATHER_SESSION_LIFETIME=60)
def test_the_lifetime_comes_from_settings(call, clock):
    call.start()
    clock.shift(timedelta(seconds=61))
    assert spoken(call.card("8264")) == TIMED_OUT


def test_a_finished_call_refuses_further_steps(call, demo_account, clock):
    call.start()
    call.card("1234")
    call.pin("0000")
    for step in (call.start, lambda: call.card("1234"), lambda: call.pin("4321")):
        response = step()
        assert "already been handled" in spoken(response) and gather(response) is None
    assert AuditEvent.objects.filter(event="not_found").count() == 1
