import pytest

from audit.models import AuditEvent
from calls.models import CallSession
from conftest import spoken

pytestmark = pytest.mark.django_db


def test_status_callback_wipes_what_is_left_and_ends_the_call(call):
    call.start()
    call.card("8264")
    assert CallSession.objects.get().card is not None
    response = call.status("completed")
    assert response.status_code == 200
    session = CallSession.objects.get()
    assert (session.card, session.state, session.outcome) == (None, "finished", "hung_up")
    assert session.ended_at is not None
    event = AuditEvent.objects.get(event="call_ended")
    assert event.detail == {"call_status": "completed"}


def test_status_callback_keeps_a_known_outcome(call, demo_account):
    call.start()
    call.card("1234")
    call.pin("4321")
    call.status()
    assert CallSession.objects.get().outcome == "verified"


def test_status_for_an_unknown_call_is_accepted_and_recorded(call):
    assert call.status("ringing").status_code == 200
    assert not CallSession.objects.exists()
    (event,) = AuditEvent.objects.all()
    assert (event.event, event.call_sid, event.outcome) == (
        "unknown_call_status",
        call.call_sid,
        "info",
    )
    # A callback before the call's first step (for "ringing") is no step: the call still opens.
    assert "payment card" in spoken(call.start())


def test_a_status_callback_for_an_ended_call_is_recorded_with_its_status(call):
    # Delivered again, or late after purge_sessions ended the call: Twilio's status is kept.
    call.start()
    call.status("completed")
    ended_at = CallSession.objects.get().ended_at
    call.status("no-answer")
    rows = AuditEvent.objects.filter(event="call_ended").order_by("id")
    assert [row.detail for row in rows] == [
        {"call_status": "completed"},
        {"call_status": "no-answer", "already_ended": True},
    ]
    assert CallSession.objects.get().ended_at == ended_at


def test_status_is_signed_too(call):
    response = call.twilio.post("/voice/status/", call.base(), signature="bad")
    assert response.status_code == 403


def test_unknown_call_status_is_not_echoed(call):
    call.start()
    call.status("<script>")
    assert AuditEvent.objects.get(event="call_ended").detail == {"call_status": "other"}


@pytest.mark.parametrize("under_way", ["queued", "initiated", "ringing", "in-progress"])
def test_a_progress_event_for_a_live_call_leaves_it_going(call, demo_account, under_way):
    # A callback subscribed to call progress events hears of the call before it ends.
    call.start()
    call.card("1234")
    assert call.status(under_way).status_code == 200
    session = CallSession.objects.get()
    assert (session.ended_at, session.state) == (None, "awaiting_pin")
    assert session.card is not None
    progress = AuditEvent.objects.get(event="call_progress")
    assert (progress.outcome, progress.detail) == ("info", {"call_status": under_way})
    assert spoken(call.pin("4321")).startswith("Thank you. Your account number is AC12345678")
    assert not AuditEvent.objects.filter(event="call_ended").exists()


def test_a_status_of_no_known_kind_still_ends_the_call(call):
    # Better a call hung up than a sealed value left behind for a status Twilio adds later.
    call.start()
    call.card("8264")
    call.status("paused-for-lunch")
    assert CallSession.objects.get().card is None
    assert AuditEvent.objects.get(event="call_ended").detail == {"call_status": "other"}
