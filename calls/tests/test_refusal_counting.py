"""A flood of refused requests costs the audit chain a row per source and minute, not a row each."""

from datetime import timedelta

import pytest

from audit import chain as auditchain
from audit.models import AuditEvent, RefusalCount, record_refusal_counts
from audit.origins import client_address
from conftest import CALL_SID, START

PARAMS = {"CallSid": CALL_SID, "From": "+15005550006"}


@pytest.fixture(autouse=True)
def _db(db):
    pass


def forge(twilio, times: int, address: str = "203.0.113.7", path: str = "/voice/") -> None:
    for _ in range(times):
        response = twilio.post(path, PARAMS, signature="forged", REMOTE_ADDR=address)
        assert response.status_code == 403


def rows(event: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event=event).order_by("id"))


def test_200_forged_requests_in_a_minute_add_one_chained_row_and_a_counter(twilio, clock):
    forge(twilio, 200)
    [first] = AuditEvent.objects.all()
    assert (first.event, first.origin_ip, first.detail) == (
        "signature_rejected",
        "203.0.113.7",
        {"path": "/voice/"},
    )
    counter = RefusalCount.objects.get()
    assert (counter.source, counter.minute, counter.event, counter.count) == (
        "203.0.113.7",
        START,
        "signature_rejected",
        199,
    )


def test_the_next_minutes_first_refusal_records_the_previous_minutes_count(twilio, clock):
    forge(twilio, 50)
    clock.shift(timedelta(seconds=75))
    forge(twilio, 1)
    assert [row.event for row in AuditEvent.objects.order_by("id")] == [
        "signature_rejected",
        "refusals_counted",
        "signature_rejected",
    ]
    [counted] = rows("refusals_counted")
    assert (counted.origin_ip, counted.outcome, counted.detail) == (
        "203.0.113.7",
        "failure",
        {"count": 49, "minute": START.isoformat(), "refused": {"signature_rejected": 49}},
    )
    # The new minute's counter starts at 0: its first refusal has its own row.
    assert list(RefusalCount.objects.values_list("minute", "count")) == [
        (START + timedelta(minutes=1), 0)
    ]


def test_a_minute_with_a_single_refusal_adds_no_counted_row(twilio, clock):
    forge(twilio, 1)
    clock.shift(timedelta(minutes=1))
    forge(twilio, 1)
    assert rows("refusals_counted") == []
    assert len(rows("signature_rejected")) == 2


def test_two_sources_get_their_own_rows(twilio, clock):
    forge(twilio, 30, "203.0.113.7")
    forge(twilio, 20, "2001:db8::5")
    assert [row.origin_ip for row in rows("signature_rejected")] == ["203.0.113.7", "2001:db8::5"]
    assert dict(RefusalCount.objects.values_list("source", "count")) == {
        "203.0.113.7": 29,
        "2001:db8::5": 19,
    }
    clock.shift(timedelta(minutes=1))
    forge(twilio, 1, "2001:db8::5")
    # Only the source that came back is recorded; the other's count waits for its next refusal.
    assert [(r.origin_ip, r.detail["count"]) for r in rows("refusals_counted")] == [
        ("2001:db8::5", 19)
    ]
    assert record_refusal_counts() == 1
    assert [(r.origin_ip, r.detail["count"]) for r in rows("refusals_counted")] == [
        ("2001:db8::5", 19),
        ("203.0.113.7", 29),
    ]


def test_a_source_gets_one_row_a_minute_whatever_kinds_it_is_refused_for(twilio, clock, settings):
    settings.TWILIO_ACCOUNT_SID = "AC" + "cd" * 16
    forge(twilio, 3)
    for _ in range(4):
        other = {**PARAMS, "AccountSid": "AC" + "00" * 16}
        assert twilio.post("/voice/", other, REMOTE_ADDR="203.0.113.7").status_code == 403
    assert [row.event for row in AuditEvent.objects.order_by("id")] == ["signature_rejected"]
    assert dict(RefusalCount.objects.values_list("event", "count")) == {
        "signature_rejected": 2,
        "foreign_account": 4,
    }
    clock.shift(timedelta(minutes=1))
    assert record_refusal_counts() == 1
    [counted] = rows("refusals_counted")
    assert counted.detail == {
        "count": 6,
        "minute": START.isoformat(),
        "refused": {"signature_rejected": 2, "foreign_account": 4},
    }


def test_counters_of_this_minute_wait_and_past_ones_are_recorded_once(twilio, clock):
    forge(twilio, 10)
    assert record_refusal_counts() == 0  # the minute is not over: more may come
    clock.shift(timedelta(minutes=5))
    assert record_refusal_counts() == 1
    assert record_refusal_counts() == 0
    assert not RefusalCount.objects.exists()
    assert rows("refusals_counted")[0].detail["count"] == 9


def test_the_chain_verifies_after_a_flood(twilio, clock):
    forge(twilio, 40)
    clock.shift(timedelta(minutes=1))
    forge(twilio, 40, path="/voice/card/")
    record_refusal_counts(before=START + timedelta(minutes=2))
    assert AuditEvent.objects.count() == 4
    assert auditchain.verify(AuditEvent.objects.order_by("id")).intact


def test_unauthorized_and_malformed_requests_are_counted_too(twilio, clock, settings):
    settings.SECUREGATHER_LEGACY_KEY = "ab" * 32
    settings.SECUREGATHER_API_TOKEN = "t" * 32
    for _ in range(5):
        response = twilio.client.post("/api/decrypt-gather", {}, REMOTE_ADDR="198.51.100.2")
        assert response.status_code == 401
    for _ in range(5):
        response = twilio.client.post(
            "/voice/",
            b"CallSid=%FF",
            content_type="application/x-www-form-urlencoded; charset=latin-1",
            REMOTE_ADDR="198.51.100.2",
        )
        assert response.status_code == 400
    assert [row.event for row in AuditEvent.objects.order_by("id")] == ["unauthorized"]
    assert dict(RefusalCount.objects.values_list("event", "count")) == {
        "unauthorized": 4,
        "malformed_request": 5,
    }


def test_the_source_is_the_clients_address(rf):
    assert client_address(rf.get("/", REMOTE_ADDR="192.0.2.1")) == "192.0.2.1"


def test_purge_sessions_records_the_counts_of_minutes_gone_by(twilio, clock):
    from calls.management.commands.purge_sessions import purge_sessions

    forge(twilio, 30)
    purge_sessions()  # the same minute: still counting
    assert rows("refusals_counted") == []
    clock.shift(timedelta(minutes=1))
    purge_sessions()
    [counted] = rows("refusals_counted")
    assert counted.detail["count"] == 29
    assert not RefusalCount.objects.exists()
