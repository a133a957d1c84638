import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections
from django.test import override_settings

from securegather.models import AuditEvent
from securegather.tests.auditlog import TABLE, raw, triggers_lifted

CALLS = 200


def verify_audit_log(capsys):
    call_command("verify_audit_log")
    return capsys.readouterr()


def play_calls(call, n: int) -> None:
    for i in range(n):
        call.call_sid = f"CA{i:032x}"
        call.start()
        call.card("1234")
        call.pin("4321" if i % 2 else "0000")
        call.status()


@pytest.mark.django_db
def test_passes_after_hundreds_of_calls_and_records_the_check(call, demo_account, capsys):
    play_calls(call, CALLS)
    rows = AuditEvent.objects.count()
    assert rows >= CALLS * 5
    out = verify_audit_log(capsys).out
    assert f"Audit log intact: {rows} rows checked." in out
    last = AuditEvent.objects.order_by("id").last()
    assert (last.event, last.outcome, last.detail["checked"]) == ("audit_verified", "success", rows)
    # Its own row is part of the chain: a second run checks it too.
    assert f"{rows + 1} rows checked" in verify_audit_log(capsys).out


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("tamper", "bad_offset"),
    [
        (lambda ids: raw(f"UPDATE {TABLE} SET outcome = 'failure' WHERE id = %s", [ids[20]]), 20),  # noqa: S608
        (lambda ids: raw(f"DELETE FROM {TABLE} WHERE id = %s", [ids[20]]), 21),  # noqa: S608
        (
            lambda ids: raw(
                f"INSERT INTO {TABLE} (created_at, event, outcome, channel, actor, call_sid, "  # noqa: S608
                "caller, account_number, key_id, user_agent, detail, prev_mac, mac) "
                "SELECT created_at, 'verified', 'success', channel, actor, call_sid, caller, "
                "'AC12345678', key_id, user_agent, detail, mac, mac "
                f"FROM {TABLE} WHERE id = %s",
                [ids[-1]],
            ),
            None,
        ),
    ],
    ids=["edited", "deleted", "inserted"],
)
def test_fails_naming_the_first_bad_row(call, demo_account, capsys, tamper, bad_offset):
    play_calls(call, 10)
    ids = list(AuditEvent.objects.order_by("id").values_list("id", flat=True))
    with triggers_lifted():
        tamper(ids)
    bad = ids[bad_offset] if bad_offset is not None else max(ids) + 1
    with pytest.raises(CommandError, match=rf"Audit log chain broken at row {bad}: "):
        verify_audit_log(capsys)
    last = AuditEvent.objects.order_by("id").last()
    assert (last.event, last.outcome, last.detail["first_bad_row"]) == (
        "audit_verified",
        "failure",
        bad,
    )


@pytest.mark.django_db
def test_rows_under_a_retired_key_are_reported_apart_from_tampering(capsys):
    old = "gone:" + "cc" * 32
    with override_settings(SECUREGATHER_KEYS=old):
        AuditEvent.record("call_started", "info")
    AuditEvent.record("call_started", "info")
    AuditEvent.record("key_rotated", "success", actor="system", channel="system")
    result = verify_audit_log(capsys)
    assert "Audit log intact: 3 rows checked." in result.out
    assert "1 row(s) signed under key 'gone' cannot be checked" in result.err


@pytest.mark.django_db
def test_rows_under_a_dropped_key_without_a_rotation_after_them_fail(capsys):
    with override_settings(SECUREGATHER_KEYS="gone:" + "cc" * 32):
        (row,) = [AuditEvent.record("call_started", "info")]
    AuditEvent.record("call_started", "info")
    with pytest.raises(CommandError, match=f"row {row.id}: signed under key id 'gone'"):
        verify_audit_log(capsys)


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_do_not_fork_the_chain():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: SQLite writers are serialised by BEGIN IMMEDIATE")
    threads, per_thread = 6, 25
    start = threading.Barrier(threads)
    errors = []

    def write(n: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                AuditEvent.record("call_started", "info", call_sid=f"CA{n:02d}{i:030d}")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=write, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    macs = list(AuditEvent.objects.order_by("id").values_list("prev_mac", "mac"))
    assert len(macs) == threads * per_thread
    # Every row links to the one before it: no two rows share a predecessor.
    assert [prev for prev, _ in macs] == ["", *[mac for _, mac in macs[:-1]]]
    call_command("verify_audit_log")
