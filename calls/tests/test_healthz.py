"""GET /healthz: the database answers or the host is taken out of the load balancer."""

from __future__ import annotations

import pytest
from django.db import OperationalError, ProgrammingError, connection
from django.test import Client, override_settings

from keys.models import KeyRecord

pytestmark = pytest.mark.django_db


def test_a_reachable_database_is_200_ok(client):
    response = client.get("/healthz")
    assert (response.status_code, response.json()) == (
        200,
        {"status": "ok", "guessing_suspected": False},
    )
    assert "no-cache" in response["Cache-Control"]


def test_head_works_for_probes_that_send_it(client):
    assert client.head("/healthz").status_code == 200


def test_a_database_that_does_not_answer_is_503_without_detail(client, monkeypatch, caplog):
    def refuse():
        raise OperationalError('connection to server at "10.0.0.7", port 5432 failed')

    monkeypatch.setattr(connection, "cursor", refuse)
    response = client.get("/healthz")
    assert (response.status_code, response.json()) == (503, {"status": "unavailable"})
    assert "10.0.0.7" not in response.content.decode() + caplog.text
    assert "OperationalError" in caplog.text


def test_it_needs_no_login_and_takes_no_post(client):
    assert client.post("/healthz").status_code == 405


def test_it_answers_plain_http_where_everything_else_redirects_to_https(settings):
    settings.SECURE_SSL_REDIRECT = True
    client = Client()
    assert client.get("/healthz").status_code == 200
    redirect = client.post("/voice/", {})
    assert (redirect.status_code, redirect["Location"]) == (301, "https://testserver/voice/")


def test_it_answers_a_probe_by_address_where_allowed_hosts_refuses_the_rest(settings):
    # A load balancer's probe names the host by its address, which ALLOWED_HOSTS leaves out.
    settings.ALLOWED_HOSTS = ["voice.example.com"]
    client = Client(HTTP_HOST="10.0.3.7:8000")
    assert client.get("/healthz").status_code == 200
    assert client.post("/voice/", {}).status_code == 400
    assert client.get("/healthz/").status_code == 400  # the path exactly, nothing under it


def test_a_key_id_holding_other_bytes_takes_the_host_out(client, caplog):
    # Every call on this host would apologise (it refuses to seal): a probe must say so.
    KeyRecord.objects.update_or_create(kid="test2", defaults={"check_value": "0" * 16})
    response = client.get("/healthz")
    assert (response.status_code, response.json()) == (503, {"status": "unavailable"})
    assert "key id 'test2' holds other bytes" in caplog.text and "E007" in caplog.text
    KeyRecord.objects.filter(kid="test2").delete()
    assert client.get("/healthz").status_code == 200


def test_an_unmigrated_database_takes_the_host_out(client, monkeypatch, caplog):
    def no_table(keys):
        raise ProgrammingError('relation "securegather_keyrecord" does not exist')

    monkeypatch.setattr(KeyRecord, "changed", no_table)
    response = client.get("/healthz")
    assert (response.status_code, response.json()) == (503, {"status": "unavailable"})
    assert "not migrated (ProgrammingError)" in caplog.text


@override_settings(SECUREGATHER_KEYS="k1:nothex")
def test_an_unusable_keyring_takes_the_host_out(client, caplog):
    assert client.get("/healthz").status_code == 503
    assert "the keyring is unusable (key 'k1' is not hexadecimal)" in caplog.text
