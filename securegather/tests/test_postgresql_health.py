"""The PostgreSQL backend's health check: no round trip for a live connection, and a connection
the server ended is found dead before a request's first query fails on it."""

from __future__ import annotations

import time

import psycopg
import pytest
from django.db import connection

from calls.models import CallSession
from calls.tests.test_faults import APOLOGY
from calls.tests.twiml import spoken

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def end_from_the_server(pid: int) -> None:
    """What a server restart does to a kept connection: the server ends it."""
    params = connection.get_connection_params()
    params.pop("context", None)
    params.pop("cursor_factory", None)
    with psycopg.connect(**params, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])


def wait_until_unusable(seconds: float = 5) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not connection.is_usable():
            return True
        time.sleep(0.05)
    return False


def test_a_live_connection_is_usable_without_a_query():
    connection.ensure_connection()
    live = connection.connection

    def no_queries(*args, **kwargs):
        raise AssertionError("the health check sent a query")

    live.cursor, live.execute = no_queries, no_queries
    try:
        assert connection.is_usable()
    finally:
        del live.cursor, live.execute


def test_a_connection_the_server_ended_is_dropped_before_the_next_step(call):
    call.start()
    end_from_the_server(connection.connection.info.backend_pid)
    assert wait_until_unusable()
    # What the start of a request does (request_started → close_old_connections, which the test
    # client leaves out): the check closes the dead connection, and the step opens a new one.
    connection.health_check_done = False
    connection.close_if_health_check_failed()
    assert connection.connection is None
    response = call.card("1234")
    assert spoken(response) != APOLOGY
    assert CallSession.objects.get().state == CallSession.State.AWAITING_PIN
