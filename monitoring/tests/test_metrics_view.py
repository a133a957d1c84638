"""GET /metrics: who may read it, and what it says, read with prometheus-client's own parser."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client, override_settings
from prometheus_client.parser import text_string_to_metric_families

from accounts.resolvers import resolve
from conftest import CALLER
from monitoring import views
from monitoring.collectors import AuditTally

pytestmark = pytest.mark.django_db

TOKEN = "t" * 40


@pytest.fixture(autouse=True)
def fresh_tally(monkeypatch):
    """Each test a new process: no counts kept from another test's rows."""
    monkeypatch.setattr(views, "TALLY", AuditTally())


def scrape(client: Client | None = None, **headers: str):
    client = client or Client()
    return client.get("/metrics", headers=headers or {"Authorization": f"Bearer {TOKEN}"})


def samples(response) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(figures, name: str, **labels: str) -> float:
    return figures[name, tuple(sorted(labels.items()))]


def test_no_address_and_no_token_set_is_404():
    assert scrape().status_code == 404


@override_settings(SECUREGATHER_METRICS_TOKEN=TOKEN)
@pytest.mark.parametrize(
    "authorization", ["", f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN]
)
def test_a_wrong_or_missing_token_is_403(authorization):
    response = scrape(Authorization=authorization) if authorization else Client().get("/metrics")
    assert response.status_code == 403
    assert b"securegather_" not in response.content


@override_settings(SECUREGATHER_METRICS_TOKEN=TOKEN)
def test_the_token_reads_them():
    assert scrape().status_code == 200


@override_settings(SECUREGATHER_METRICS_ADDRESSES=["10.0.0.0/8", "192.0.2.7"])
@pytest.mark.parametrize(("address", "status"), [("10.1.2.3", 200), ("192.0.2.7", 200)])
def test_a_listed_address_or_network_reads_them_without_a_token(address, status):
    assert Client(REMOTE_ADDR=address).get("/metrics").status_code == status


@override_settings(SECUREGATHER_METRICS_ADDRESSES=["10.0.0.0/8"])
def test_another_address_is_403():
    assert Client(REMOTE_ADDR="192.0.2.8").get("/metrics").status_code == 403


@override_settings(
    SECUREGATHER_METRICS_ADDRESSES=["127.0.0.1", "10.0.0.0/8", "0.0.0.0/0", "::/0"],
    SECUREGATHER_TRUSTED_PROXY_HEADER="X-Forwarded-For",
    SECUREGATHER_TRUSTED_PROXY_COUNT=1,
)
@pytest.mark.parametrize("forwarded", [None, '"', '10.0.0.5, "', "unknown"])
def test_behind_the_proxy_a_request_named_by_no_address_is_403_whatever_is_listed(forwarded):
    # Its peer is the proxy (127.0.0.1), listed here; the client's address is none at all.
    headers = {} if forwarded is None else {"X-Forwarded-For": forwarded}
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics", headers=headers).status_code == 403


@override_settings(SECUREGATHER_METRICS_TOKEN=TOKEN)
def test_only_get_and_head():
    assert (
        Client().post("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 405
    )


@override_settings(SECUREGATHER_METRICS_TOKEN=TOKEN)
def test_calls_by_outcome_lockouts_refusals_and_step_latency(call, demo_account, twilio):
    before = samples(scrape())
    call.start()
    call.card("1234")
    call.pin("4321")  # verified
    call.status()
    twilio.post("/voice/", call.base(), signature="forged")  # a refusal
    for _ in range(5):  # the fifth failure locks the caller and the account
        resolve("1234", "0000", "+15005550099")
    after = samples(scrape())

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - before.get((name, tuple(sorted(labels.items()))), 0)

    assert grew("securegather_calls_started_total") == 1
    assert grew("securegather_call_outcomes_total", outcome="verified") == 1
    assert grew("securegather_call_outcomes_total", outcome="not_found") == 0  # API channel's
    assert grew("securegather_refusals_total", kind="signature_rejected") == 1
    assert grew("securegather_lockouts_total") == 2
    assert value(after, "securegather_locked", scope="caller") == 1
    assert value(after, "securegather_locked", scope="card") == 1
    assert value(after, "securegather_locked", scope="owner") == 0
    # Every answer a step gives is timed, its refusals too: the forged request's 403.
    assert grew("securegather_step_seconds_count", step="incoming") == 2
    for step in ("card", "pin", "status"):
        assert grew("securegather_step_seconds_count", step=step) == 1
    assert value(after, "securegather_key_seals", role="primary") >= 2
    assert value(after, "securegather_key_seal_limit") == 2**30
    assert value(after, "securegather_audit_append_failures_total", where="call_step") == 0


@override_settings(SECUREGATHER_METRICS_TOKEN=TOKEN)
def test_no_label_holds_a_digit_a_caller_number_or_an_account_number(call, demo_account):
    call.start()
    call.card("1234")
    call.pin("4321")
    call.status()
    body = scrape().content.decode()
    words = []
    for family in text_string_to_metric_families(body):
        words += [family.name, family.documentation]
        for sample in family.samples:
            # A histogram's bucket bounds ("le") are the only numbers a label holds.
            labels = {k: v for k, v in sample.labels.items() if k != "le"}
            assert not any(re.search(r"[0-9]", f"{k}{v}") for k, v in labels.items()), sample
            words += [sample.name, *labels.values()]
    # Values are figures (a time's digits may hold any 4 in a row): everything else holds none.
    text = "\n".join(words)
    for secret in ("1234", "4321", CALLER, CALLER[-4:], "AC12345678"):
        assert secret not in text
    assert CALLER not in body and "AC12345678" not in body


@override_settings(SECUREGATHER_METRICS_TOKEN=TOKEN)
def test_refusals_counted_in_a_minute_are_all_counted(call, clock, twilio):
    for _ in range(3):  # one row for the first, the others in the minute's counter
        twilio.post("/voice/", call.base(), signature="forged")
    figures = samples(scrape())
    assert value(figures, "securegather_refusals_total", kind="signature_rejected") == 3
    clock.shift(timedelta(minutes=1))
    twilio.post("/voice/", call.base(), signature="forged")  # records the counter as a row
    figures = samples(scrape())
    assert value(figures, "securegather_refusals_total", kind="signature_rejected") == 4


@override_settings(SECUREGATHER_METRICS_TOKEN=TOKEN)
def test_counts_are_the_same_from_every_process_and_do_not_shrink(call, demo_account, clock):
    call.start()
    clock.shift(timedelta(minutes=10))  # the first call's rows have settled
    first = samples(scrape())
    assert value(first, "securegather_calls_started_total") == 1
    call.call_sid = "CA" + "ef" * 16
    call.start()
    again = samples(scrape())
    assert value(again, "securegather_calls_started_total") == 2
    views.TALLY = AuditTally()  # another worker, or this one restarted
    assert value(samples(scrape()), "securegather_calls_started_total") == 2
    clock.shift(timedelta(minutes=10))
    assert value(samples(scrape()), "securegather_calls_started_total") == 2


@override_settings(SECUREGATHER_METRICS_TOKEN=TOKEN)
def test_an_audit_row_the_service_could_not_append_is_counted(monkeypatch, rf):
    from audit.models import AuditEvent
    from calls.webhooks import audit_failure

    before = value(samples(scrape()), "securegather_audit_append_failures_total", where="call_step")

    def refused(*args, **kwargs):
        raise RuntimeError("the database is gone")

    monkeypatch.setattr(AuditEvent, "record", refused)
    audit_failure(rf.post("/voice/card/"), ValueError("a step failed"))
    monkeypatch.undo()
    monkeypatch.setattr(views, "TALLY", AuditTally())
    after = value(samples(scrape()), "securegather_audit_append_failures_total", where="call_step")
    assert after - before == 1
