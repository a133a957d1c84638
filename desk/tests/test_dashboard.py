"""The admin's first page is the ops desk: the calls of the last day and week by outcome, the
failures per hour, the locks, the audit log's last verification, the keyring and the failing
system checks, each for a role that can already view its records."""

from datetime import timedelta
from unittest import mock

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.test import override_settings
from django.utils import timezone

from accounts.models import Lockout
from audit.models import AuditEvent
from audit.verification import verify_log
from conftest import CALLER, START, make_staff, verified_client
from desk.dashboard import CHECKS_CACHED_FOR, dashboard, failing_checks, keyring_state
from keys.keyring import get_keyring
from keys.models import KeyRecord

pytestmark = pytest.mark.django_db

SECTIONS = ["desk-calls", "desk-failures", "desk-verification", "desk-locks"]


def board_of(client):
    response = client.get("/admin/")
    assert response.status_code == 200
    return response.content.decode()


def test_ops_see_the_calls_locks_and_verification_but_not_keys_or_checks(ops_client, calls_made):
    page = board_of(ops_client)
    assert all(f'id="{section}"' in page for section in SECTIONS)
    assert 'id="desk-keys"' not in page and 'id="desk-checks"' not in page
    assert "<strong>4</strong> calls started" in page
    assert "<svg" in page and "<script" not in page.split('id="dashboard"')[1].split("</div>")[0]
    assert "View site" not in page


def test_a_superuser_sees_the_keyring_and_the_system_checks_too(admin_client, calls_made):
    page = board_of(admin_client)
    assert 'id="desk-keys"' in page and "Primary key <code>test2</code>" in page
    assert "Accounts resolved by <code>DatabaseResolver</code>." in page
    # The test database's own server may warn (audit.W002 on a default PostgreSQL): shown as is.
    failing = failing_checks()
    assert 'id="desk-checks"' in page
    assert all(f"<code>{check.id}</code>" in page for check in failing)
    assert ("Every system check passes." in page) == (not failing)


def test_the_system_checks_run_at_most_once_a_minute_per_worker(superuser):
    with (
        time_machine.travel(START, tick=False),
        mock.patch("desk.dashboard.run_checks", autospec=True, return_value=[]) as run,
    ):
        dashboard(superuser, START)
        dashboard(superuser, START)
        assert run.call_count == 1
    with (
        time_machine.travel(START + timedelta(seconds=CHECKS_CACHED_FOR + 1), tick=False),
        mock.patch("desk.dashboard.run_checks", autospec=True, return_value=[]) as run,
    ):
        dashboard(superuser, START)
        assert run.call_count == 1


def test_a_staff_member_without_a_role_sees_no_section(db):
    bare = make_staff("bea")
    page = board_of(verified_client(bare))
    assert 'id="dashboard"' in page
    assert not any(f'id="{section}"' in page for section in [*SECTIONS, "desk-keys"])
    bare.user_permissions.add(Permission.objects.get(codename="view_lockout"))
    page = board_of(verified_client(bare))
    assert 'id="desk-locks"' in page and 'id="desk-calls"' not in page


def test_calls_are_counted_by_outcome_from_the_audit_log(superuser, call):
    with time_machine.travel(START, tick=False):
        for n, event in enumerate(["verified", "not_found", "not_found", "locked_out"]):
            AuditEvent.record("call_started", "info", call_sid=f"CA{n:032x}")
            AuditEvent.record(event, "failure", call_sid=f"CA{n:032x}")
    with time_machine.travel(START - timedelta(days=3), tick=False):
        AuditEvent.record("verified", "success")
    with time_machine.travel(START - timedelta(days=8), tick=False):
        AuditEvent.record("not_found", "failure")  # older than a week: not counted
    board = dashboard(superuser, START + timedelta(minutes=30))
    day, week = board.periods
    assert (day.started, day.counts["verified"], day.counts["not_found"]) == (4, 1, 2)
    assert day.counts["locked_out"] == 1 and day.success_rate == "33 %"
    assert (week.counts["verified"], week.counts["not_found"], week.success_rate) == (2, 2, "50 %")
    # Failures per hour: the hour of START holds the 3 (not found twice, locked out once).
    hours = board.failures_per_hour.bars
    assert (
        len(hours) == 24 and [b.value for b in hours][-1] == 3 and sum(b.value for b in hours) == 3
    )
    assert hours[-1].label == "09:00"


def test_each_hours_bar_links_to_the_rows_it_counts(ops_client, ops_user):
    with time_machine.travel(START, tick=False):
        for event in ["not_found", "locked_out", "retries_exhausted", "not_found"]:
            AuditEvent.record(event, "failure")
        # Failures, yet no failed verification: a forged request refused, a wrong staff password.
        AuditEvent.record("signature_rejected", "failure")
        AuditEvent.record("staff_login_failed", "failure")
        AuditEvent.record("verified", "success")
    last = dashboard(ops_user, START + timedelta(minutes=30)).failures_per_hour.bars[-1]
    listed = ops_client.get(last.url)
    assert listed.status_code == 200
    assert last.value == listed.context["cl"].result_count == 4
    assert {row.event for row in listed.context["cl"].result_list} == {
        "not_found",
        "locked_out",
        "retries_exhausted",
    }


def test_the_last_verification_says_when_and_what_it_found(ops_client, calls_made):
    assert "has never been verified" in board_of(ops_client)
    verify_log()
    page = board_of(ops_client)
    assert "intact</a>" in page and "0 problems" in page


def test_the_locks_of_now_are_listed_masked_each_a_link(ops_client, db):
    now = timezone.now()
    held = Lockout.objects.create(scope="caller", key=CALLER, locked_until=now + timedelta(hours=1))
    Lockout.objects.create(scope="account", key="AC1", locked_until=now - timedelta(minutes=1))
    page = board_of(ops_client)
    assert "Locked now (1)" in page
    assert f'href="/admin/accounts/lockout/{held.pk}/change/">**********06</a>' in page
    assert CALLER not in page and "AC1<" not in page


def test_an_old_primary_key_is_drawn_past_its_limit(superuser):
    KeyRecord.remember(get_keyring().every_key)
    with override_settings(SECUREGATHER_KEY_MAX_AGE_DAYS=30):
        keys = dashboard(superuser, timezone.now() + timedelta(days=31)).keys
    assert keys is not None and keys.age_days == 31
    age, seals = keys.chart.bars
    assert age.failing and not seals.failing


def test_a_failing_system_check_is_shown_to_superusers_only(admin_client, ops_client, db):
    with override_settings(TWILIO_AUTH_TOKEN=""):
        assert "TWILIO_AUTH_TOKEN is not set" in board_of(admin_client)
        assert "TWILIO_AUTH_TOKEN" not in board_of(ops_client)


@override_settings(SECUREGATHER_RESOLVER="accounts.resolvers.HttpResolver")
def test_the_keyring_section_names_the_http_resolver():
    # Its values are sealed to the backend's keys: the ring's seal count is not theirs.
    assert keyring_state(timezone.now()).resolver == "HttpResolver"
