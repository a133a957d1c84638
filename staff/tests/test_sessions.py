"""Only requests that use their session save one: the admin's, never a webhook's or the API's."""

from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conftest import START
from conftest import make_staff, verified_client

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
