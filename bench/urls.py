"""The project's routes plus the views the secured steps are held against.

- /bench/baseline/: the cheapest Django view that answers a Gather. It has no signature check and
  touches no database: what the framework alone costs per request.
- /bench/floor/write/: the same answer after one INSERT of a row, committed: the least a step
  costs once it must leave a durable audit row.
- /bench/floor/append/: the same answer after the bare statements of an append to a hash chain:
  lock the head row and read it, update it, insert the row, commit. No signature, no MAC, no
  sealing, no session: the least a step costs once its audit rows form one chain.
- /bench/floor/step/: the append, after one statement that writes the call's state row under
  its lock (an upsert by CallSid): the least a step costs once, as the design has it, it keeps
  the call's state in the database and appends its audit row to the chain.

A floor is Django's transaction, as a step's: BEGIN (IMMEDIATE on SQLite), then the statements one
by one, then COMMIT. On PostgreSQL each statement is a round trip of its own: with server-side
binding (settings.DATABASES) a statement goes to the server with its placeholders, one per
execute, so the floors cannot batch statements into one round trip either.
"""

from collections.abc import Sequence
from contextlib import nullcontext
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from twilio.twiml.voice_response import VoiceResponse

from bench.models import FloorHead

_response = VoiceResponse()
_response.gather(input="dtmf", num_digits=4, timeout=10, method="POST", action="/voice/card/").say(
    "Please enter last 4 digits of your payment card number."
)
BASELINE_TWIML = str(_response)
# As long as an audit row's MAC ("kid:" and 64 hex digits); computing one is security's work.
MAC = "floor:" + "0" * 64
# bench.models' tables, by name: raw SQL through Django's cursor, its cheapest path.
SELECT_HEAD = "SELECT mac FROM bench_floorhead WHERE id = %s"
UPDATE_HEAD = "UPDATE bench_floorhead SET mac = %s WHERE id = %s"
UPSERT_CALL = (
    "INSERT INTO bench_floorcall (call_sid, state) VALUES (%s, %s) "
    "ON CONFLICT (call_sid) DO UPDATE SET state = excluded.state"
)
INSERT_ROW = "INSERT INTO bench_floorrow (created_at, call_sid, mac) VALUES (%s, %s, %s)"


def _answer() -> HttpResponse:
    return HttpResponse(BASELINE_TWIML, content_type="text/xml")


def _append(sid: str, before: Sequence[tuple[str, Sequence[Any]]] = ()) -> None:
    """Run ``before``'s statements, then link a row to the chain's head, in one transaction."""
    row: tuple[datetime, str, str] = (timezone.now(), sid, MAC)
    # One statement per execute: with server-side binding (settings.DATABASES) PostgreSQL
    # prepares each statement with its placeholders, and refuses several in one.
    select_head = SELECT_HEAD + (" FOR UPDATE" if connection.vendor == "postgresql" else "")
    with transaction.atomic(), connection.cursor() as cursor:
        for sql, params in before:
            cursor.execute(sql, params)
        cursor.execute(select_head, [FloorHead.ID])
        cursor.fetchone()
        cursor.execute(UPDATE_HEAD, [MAC, FloorHead.ID])
        cursor.execute(INSERT_ROW, row)


@csrf_exempt
def baseline(request: HttpRequest) -> HttpResponse:
    return _answer()


@csrf_exempt
def floor_write(request: HttpRequest) -> HttpResponse:
    row: tuple[datetime, str, str] = (timezone.now(), request.POST.get("CallSid", ""), MAC)
    # On PostgreSQL a bare INSERT commits itself in one round trip. On SQLite it goes in a
    # transaction: the project's backend queues writers at BEGIN, where a bare INSERT would
    # wait in SQLite's busy handler.
    postgres = connection.vendor == "postgresql"
    with nullcontext() if postgres else transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(INSERT_ROW, row)
    return _answer()


@csrf_exempt
def floor_append(request: HttpRequest) -> HttpResponse:
    _append(request.POST.get("CallSid", ""))
    return _answer()


@csrf_exempt
def floor_step(request: HttpRequest) -> HttpResponse:
    sid = request.POST.get("CallSid", "")
    _append(sid, [(UPSERT_CALL, [sid, "card"])])
    return _answer()


urlpatterns = [
    path("bench/baseline/", baseline),
    path("bench/floor/write/", floor_write),
    path("bench/floor/append/", floor_append),
    path("bench/floor/step/", floor_step),
    path("", include("securegather.urls")),
]
