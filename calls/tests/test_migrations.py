"""The calls app's schema takes what the release before it writes: a rolling deploy migrates
before the new code takes traffic (docs/deployment.md), and old workers keep answering calls."""

from __future__ import annotations

import pytest
from django.db import connection
from django.utils import timezone

from calls.models import CallSession, db_values
from conftest import CALL_SID, CALLER

pytestmark = pytest.mark.django_db


def test_a_session_started_by_the_previous_release_gets_an_empty_caller_digest():
    # The previous release's first step: its INSERT names every column but the two this one
    # adds, the caller digest and the attestation.
    old = CallSession(call_sid=CALL_SID, caller=CALLER)
    old.created_at = old.updated_at = timezone.now()
    names = [
        field.column
        for field in CallSession._meta.concrete_fields
        if field.column not in ("id", "caller_digest", "attestation")
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO calls_callsession ({', '.join(names)}) "  # noqa: S608
            f"VALUES ({', '.join(['%s'] * len(names))})",
            db_values(old, names),
        )
    session = CallSession.objects.get(call_sid=CALL_SID)
    assert (session.caller_digest, session.attestation) == ("", "")
