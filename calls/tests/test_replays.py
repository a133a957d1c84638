"""Twilio redelivers webhooks, and two deliveries can race: each step takes effect once."""

import threading

import pytest
from django.db import connection

from accounts.models import Lockout
from audit.models import AuditEvent
from calls.models import CallSession
from conftest import TwilioClient, gather, spoken

TOKEN = "HEADER"


def events():
    return list(AuditEvent.objects.order_by("id").values_list("event", flat=True))


def post(call, step, digits=None, token="", twilio=None):
    params = call.base() if digits is None else {**call.base(), "Digits": digits}
    extra = {"HTTP_I_TWILIO_IDEMPOTENCY_TOKEN": token} if token else {}
    return (twilio or call.twilio).post(f"/voice/{step}", params, **extra)


@pytest.mark.django_db
def test_a_redelivered_wrong_pin_is_counted_once_and_answered_the_same(call, demo_account):
    post(call, "", token="t-start")
    post(call, "card/", "1234", token="t-card")
    first = post(call, "pin/", "0000", token="t-pin")
    again = post(call, "pin/", "0000", token="t-pin")
    assert again.content == first.content
    assert "not able to locate you" in spoken(again)
    assert events().count("not_found") == 1 and events()[-1] == "duplicate_delivery"
    assert [len(row.failures) for row in Lockout.objects.all()] == [1, 1]


@pytest.mark.django_db
def test_a_redelivered_card_does_not_advance_twice(call, demo_account):
    post(call, "", token="t-start")
    post(call, "card/", "1234", token="t-card")
    again = post(call, "card/", "1234", token="t-card")
    assert gather(again).get("action") == "/voice/pin/"
    assert events().count("card_entered") == 1
    assert "AC12345678" in spoken(post(call, "pin/", "4321", token="t-pin"))


@pytest.mark.django_db
def test_a_redelivered_invalid_entry_uses_one_try(call):
    post(call, "", token="t-start")
    for _ in range(3):
        post(call, "card/", "12", token="t-bad")
    assert CallSession.objects.get().tries == 1
    assert gather(post(call, "card/", "8264", token="t-good")).get("action") == "/voice/pin/"


@pytest.mark.django_db
def test_a_redelivered_start_does_not_open_a_second_call(call):
    first = post(call, "", token="t-start")
    assert post(call, "", token="t-start").content == first.content
    assert events() == ["call_started", "duplicate_delivery"]


@pytest.mark.django_db
def test_a_new_token_for_an_old_step_is_out_of_order_not_a_replay(call, demo_account):
    post(call, "", token="t-start")
    post(call, "card/", "1234", token="t-card")
    post(call, "pin/", "4321", token="t-pin")
    response = post(call, "pin/", "4321", token="t-other")
    assert "already been handled" in spoken(response)
    assert events().count("verified") == 1


@pytest.mark.django_db
@pytest.mark.parametrize("token", ["x" * 129, "tok en", "tök", "\x00"])
def test_a_malformed_token_is_ignored(call, token):
    post(call, "", token=token)
    assert CallSession.objects.get().idempotency_token == ""


@pytest.mark.django_db
def test_the_call_end_clears_the_remembered_answer(call, demo_account):
    post(call, "", token="t-start")
    post(call, "card/", "1234", token="t-card")
    post(call, "pin/", "4321", token="t-pin")
    assert "12.55" in CallSession.objects.get().last_answer
    call.status()
    session = CallSession.objects.get()
    assert (session.idempotency_token, session.last_answer) == ("", "")
    # A step arriving after the end hears its goodbye, which is not kept either.
    late = post(call, "pin/", "4321", token="t-late")
    assert "already been handled" in spoken(late)
    session = CallSession.objects.get()
    assert (session.idempotency_token, session.last_answer) == ("", "")


def race(call, step, digits, token, n=2):
    """Post the same step from n threads at once, each on its own database connection."""
    start, responses = threading.Barrier(n), []

    def deliver():
        try:
            start.wait()
            responses.append(post(call, step, digits, token, twilio=TwilioClient()))
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return responses


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("token", ["t-pin", ""])
def test_racing_deliveries_of_a_wrong_pin_are_counted_once(call, demo_account, token):
    post(call, "", token="t-start")
    post(call, "card/", "1234", token="t-card")
    responses = race(call, "pin/", "0000", token, n=4)
    assert all(response.status_code == 200 for response in responses)
    assert events().count("pin_entered") == 1 and events().count("not_found") == 1
    assert [len(row.failures) for row in Lockout.objects.all()] == [1, 1]
    if token:
        assert len({response.content for response in responses}) == 1
        assert events().count("duplicate_delivery") == 3


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_racing_first_deliveries_open_one_session(call):
    responses = race(call, "", None, "t-start", n=4)
    assert len({response.content for response in responses}) == 1
    assert CallSession.objects.count() == 1
    assert events().count("call_started") == 1


@pytest.mark.django_db
def test_a_call_played_again_after_its_session_was_purged_hears_nothing(call, demo_account):
    """Twilio's signatures carry no time: captured requests stay valid after retention."""
    call.start()
    call.card("1234")
    assert b"AC12345678" in call.pin("4321").content
    call.status()
    CallSession.objects.all().delete()  # what purge_sessions does after the retention period
    for step in (
        call.start,
        lambda: call.card("1234"),
        lambda: call.card("1234"),
        lambda: call.pin("4321"),
    ):
        response = step()
        assert b"AC12345678" not in response.content
        assert "already been handled" in spoken(response)
    assert not CallSession.objects.exists()
    assert AuditEvent.objects.filter(event="replay_refused").count() == 4
    assert AuditEvent.objects.filter(event="verified").count() == 1


@pytest.mark.django_db
def test_a_call_whose_first_request_was_refused_for_its_signature_still_starts(call, demo_account):
    call.twilio.post("/voice/", call.base(), signature="forged")
    assert AuditEvent.objects.get().event == "signature_rejected"
    assert gather(call.start()) is not None
    call.card("1234")
    assert b"AC12345678" in call.pin("4321").content
