"""Only requests that use their session save one: the admin's, never a webhook's or the API's. And
the session store (SESSION_ENGINE) deletes expired sessions recording each staff sign-out."""

from datetime import timedelta
from importlib import import_module

import pytest
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from conftest import START, make_staff, verified_client

pytestmark = pytest.mark.django_db
COOKIE = "a" * 32  # well-formed, known to no one


@pytest.mark.parametrize("signed", [True, False])
def test_a_webhook_sending_a_session_cookie_writes_no_session(call, signed):
    call.twilio.client.cookies["sessionid"] = COOKIE
    params = {**call.base(), "Digits": ""}
    with CaptureQueriesContext(connection) as queries:
        response = call.twilio.post("/voice/", params, **({} if signed else {"signature": ""}))
    assert response.status_code == (200 if signed else 403)
    assert "sessionid" not in response.cookies
    assert not Session.objects.exists()
    assert not [q for q in queries.captured_queries if "django_session" in q["sql"]]


def test_the_api_sending_a_session_cookie_writes_no_session(client, settings):
    settings.SECUREGATHER_LEGACY_KEY = "00" * 32
    client.cookies["sessionid"] = COOKIE
    response = client.post("/api/decrypt-gather", "{}", content_type="application/json")
    assert response.status_code == 400
    assert "sessionid" not in response.cookies and not Session.objects.exists()


def test_each_admin_page_still_renews_the_session(clock):
    client = verified_client(make_staff("olive", ops=True))
    clock.shift(timedelta(minutes=10))
    assert client.get("/admin/").status_code == 200
    assert Session.objects.get().expire_date == START + timedelta(minutes=25)


def test_the_session_store_clears_expired_sessions_in_batches_each_sign_out_recorded(
    clock, monkeypatch
):
    monkeypatch.setattr("staff.sessions.BATCH", 2)
    store = import_module(settings.SESSION_ENGINE).SessionStore
    staff = make_staff("olive", ops=True)
    for n in range(5):  # three signed in, two not
        session = store()
        session.update({SESSION_KEY: str(staff.pk)} if n % 2 == 0 else {"seen": True})
        session.create()
    clock.shift(timedelta(minutes=16))
    kept = store()
    kept.create()  # made now: 15 minutes to go
    batches: list[int] = []
    store.clear_expired(counted=batches.append)
    assert batches == [2, 2, 1]
    assert list(Session.objects.values_list("pk", flat=True)) == [kept.session_key]
    logouts = AuditEvent.objects.filter(event="staff_logout")
    assert list(logouts.values_list("actor", "detail__reason")) == [("olive", "idle_timeout")] * 3
