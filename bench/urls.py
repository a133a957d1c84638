"""The project's routes plus the views the secured steps are held against.

- /bench/baseline/: the cheapest Django view that answers a Gather. It has no signature check and
  touches no database: what the framework alone costs per request.
- /bench/floor/write/: the same answer after one INSERT of a row, committed: the least a step
  costs once it must leave a durable audit row.
- /bench/floor/append/: the same answer after the bare shape of an append to a hash chain, as
  plain Django runs it: lock the head row, update it, insert the row, commit. No signature, no
  MAC, no sealing, no session: the least a step costs once its audit rows form one chain.
- /bench/floor/step/: the append, after one statement that writes the call's state row under
  its lock (an upsert by CallSid): the least a step costs once, as the design has it, it keeps
  the call's state in the database and appends its audit row to the chain.
"""

from datetime import datetime

from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper
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
# bench.models' tables, by name: plain SQL, as the least Django offers.
SELECT_HEAD = "SELECT mac FROM bench_floorhead WHERE id = %s"
UPDATE_HEAD = "UPDATE bench_floorhead SET mac = %s WHERE id = %s"
UPSERT_CALL = (
    "INSERT INTO bench_floorcall (call_sid, state) VALUES (%s, %s) "
    "ON CONFLICT (call_sid) DO UPDATE SET state = excluded.state"
)
INSERT_ROW = "INSERT INTO bench_floorrow (created_at, call_sid, mac) VALUES (%s, %s, %s)"


def _answer() -> HttpResponse:
    return HttpResponse(BASELINE_TWIML, content_type="text/xml")


@csrf_exempt
def baseline(request: HttpRequest) -> HttpResponse:
    return _answer()


@csrf_exempt
def floor_write(request: HttpRequest) -> HttpResponse:
    with connection.cursor() as cursor:
        cursor.execute(INSERT_ROW, [timezone.now(), request.POST.get("CallSid", ""), MAC])
    return _answer()


def _append(cursor: CursorWrapper, row: tuple[datetime, str, str]) -> None:
    """Link a row to the chain's head: the statements, without the MAC."""
    if connection.vendor == "postgresql":
        cursor.execute(SELECT_HEAD + " FOR UPDATE", [FloorHead.ID])
        cursor.fetchone()
        # Both in one round trip, as the project's steps send them (statements.deferring).
        cursor.execute(UPDATE_HEAD + "; " + INSERT_ROW, (MAC, FloorHead.ID, *row))
    else:
        # SQLite has no FOR UPDATE: the project's backend takes the write lock at BEGIN.
        cursor.execute(SELECT_HEAD, [FloorHead.ID])
        cursor.fetchone()
        cursor.execute(UPDATE_HEAD, [MAC, FloorHead.ID])
        cursor.execute(INSERT_ROW, row)


@csrf_exempt
def floor_append(request: HttpRequest) -> HttpResponse:
    with transaction.atomic(), connection.cursor() as cursor:
        _append(cursor, (timezone.now(), request.POST.get("CallSid", ""), MAC))
    return _answer()


@csrf_exempt
def floor_step(request: HttpRequest) -> HttpResponse:
    sid = request.POST.get("CallSid", "")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(UPSERT_CALL, [sid, "card"])
        _append(cursor, (timezone.now(), sid, MAC))
    return _answer()


urlpatterns = [
    path("bench/baseline/", baseline),
    path("bench/floor/write/", floor_write),
    path("bench/floor/append/", floor_append),
    path("bench/floor/step/", floor_step),
    path("", include("securegather.urls")),
]
