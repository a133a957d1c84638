import io
import json
import os
import socket
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from audit import checkpoints
from audit.models import AuditChainHead, AuditEvent
from conftest import TABLE, raw, triggers_lifted

pytestmark = pytest.mark.django_db


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    private = tmp_path / "checkpoint.pem"
    call_command("generate_checkpoint_key", str(private), stdout=io.StringIO())
    return private, tmp_path / "checkpoint.pem.pub"


@pytest.fixture
def sink(keys, tmp_path, monkeypatch) -> Path:
    """Checkpoints on, to a file, with a schedule of this test's own."""
    path = tmp_path / "checkpoints.jsonl"
    monkeypatch.setattr(checkpoints, "schedule", checkpoints.Schedule())
    with override_settings(
        SECUREGATHER_CHECKPOINT_KEY_FILE=str(keys[0]),
        SECUREGATHER_CHECKPOINT_FILE=str(path),
        SECUREGATHER_CHECKPOINT_ROWS=1000,
        SECUREGATHER_CHECKPOINT_SECONDS=300,
    ):
        yield path


def record(n: int = 1) -> AuditEvent:
    for _ in range(n):
        row = AuditEvent.record("call_started", "info")
    return row


def checkpoint_audit_log() -> str:
    out = io.StringIO()
    call_command("checkpoint_audit_log", stdout=out)
    return out.getvalue()


def verify_audit_log(capsys, checkpoint_file: Path, public_key: Path) -> str:
    call_command(
        "verify_audit_log", checkpoints=[checkpoint_file], checkpoint_public_key=public_key
    )
    return capsys.readouterr().out


def appended(row: AuditEvent, django_capture_on_commit_callbacks) -> None:
    """What AuditChainHead.append does after its rows: tell the checkpoints."""
    with django_capture_on_commit_callbacks(execute=True):
        checkpoints.after_append(row.id, row.mac)


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_the_key_pair_is_written_private_to_its_owner(keys, tmp_path):
    private, public = keys
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    with pytest.raises(CommandError, match=r"File exists\. Nothing is overwritten"):
        call_command("generate_checkpoint_key", str(private), stdout=io.StringIO())


def test_a_checkpoint_names_the_newest_row_and_verifies(sink, keys, capsys):
    row = record(3)
    assert f"Checkpoint written at row {row.id} (3 rows" in checkpoint_audit_log()
    (line,) = lines(sink)
    assert (line["last_id"], line["count"], line["mac"], line["host"]) == (
        row.id,
        3,
        row.mac,
        socket.gethostname(),
    )
    record(2)
    out = verify_audit_log(capsys, sink, keys[1])
    assert "Every row up to each of 1 checkpoint(s) is there, unchanged, up to the newest" in out
    assert f"at row {row.id} (3 rows, signed " in out
    assert "); 2 row(s) came after it." in out


def test_no_checkpoint_when_no_row_came_since(sink):
    assert "none written" in checkpoint_audit_log()  # an empty log has nothing to sign
    assert lines(sink) == []
    record(1)
    checkpoint_audit_log()
    checkpoints.schedule = checkpoints.Schedule()  # a timer's run is a new process
    assert "No new audit rows since the last checkpoint" in checkpoint_audit_log()
    assert len(lines(sink)) == 1


def test_cutting_off_the_end_is_caught(sink, keys, capsys):
    record(5)
    checkpoint_audit_log()
    kept = AuditEvent.objects.order_by("id")[2]
    # A database owner cuts the newest rows and moves the head back: the chain alone holds.
    with triggers_lifted():
        raw(f"DELETE FROM {TABLE} WHERE id > %s", [kept.id])  # noqa: S608
    AuditChainHead.objects.update(mac=kept.mac)
    call_command("verify_audit_log", stdout=io.StringIO())
    (line,) = lines(sink)
    with pytest.raises(CommandError, match=rf"broken at row {line['last_id']}: is gone, and the"):
        verify_audit_log(capsys, sink, keys[1])


def test_wiping_the_whole_log_is_caught(sink, keys, capsys):
    record(3)
    checkpoint_audit_log()
    with triggers_lifted():
        raw(f"DELETE FROM {TABLE}")  # noqa: S608
    AuditChainHead.objects.all().delete()
    call_command("verify_audit_log", stdout=io.StringIO())  # an empty log, by the chain
    (line,) = lines(sink)
    with pytest.raises(CommandError, match=rf"row {line['last_id']}: is gone") as failure:
        verify_audit_log(capsys, sink, keys[1])
    assert "rows were cut off" in str(failure.value)


def test_rows_cut_under_an_older_checkpoint_are_caught_after_a_newer_one(sink, keys, capsys):
    # C1 at row 10; the owner cuts rows 6-10 and moves the head back to row 5; new appends get
    # ids after 10 (gaps are allowed) and link to row 5; C2 signs the shorter count.
    rows = [record() for _ in range(10)]
    checkpoint_audit_log()
    with triggers_lifted():
        raw(f"DELETE FROM {TABLE} WHERE id > %s", [rows[4].id])  # noqa: S608
        raw("UPDATE audit_auditchainhead SET mac=%s WHERE id=1", [rows[4].mac])
    newest = record(3)
    assert newest.id > rows[-1].id
    checkpoint_audit_log()
    assert [(line["last_id"], line["count"]) for line in lines(sink)] == [
        (rows[-1].id, 10),
        (newest.id, 8),
    ]
    call_command("verify_audit_log", stdout=io.StringIO())  # the chain alone holds
    with pytest.raises(CommandError, match=rf"broken at row {rows[-1].id}: is gone, and the"):
        verify_audit_log(capsys, sink, keys[1])
    err = capsys.readouterr().err
    assert f"also row {newest.id}: the checkpoint signed at" in err
    assert "counted 8 rows up to it, no more than the checkpoint signed at" in err
    assert f"up to row {rows[-1].id} (10): rows were cut between them" in err


def test_a_wipe_followed_by_a_new_checkpoint_is_caught(sink, keys, capsys):
    first = record(3)
    checkpoint_audit_log()
    with triggers_lifted():
        raw(f"DELETE FROM {TABLE}")  # noqa: S608
    AuditChainHead.objects.all().delete()
    newest = record(2)  # a fresh chain, from an empty head
    checkpoint_audit_log()
    assert [line["count"] for line in lines(sink)] == [3, 2]
    call_command("verify_audit_log", stdout=io.StringIO())  # the chain alone holds
    with pytest.raises(CommandError, match=rf"broken at row {first.id}: is gone") as failure:
        verify_audit_log(capsys, sink, keys[1])
    assert "(2 problem(s) in" in str(failure.value)
    assert f"also row {newest.id}: the checkpoint signed at" in capsys.readouterr().err


def test_every_checkpoint_is_checked_in_one_pass(sink, django_assert_max_num_queries):
    rows = [record() for _ in range(30)]
    signed = [
        checkpoints.Checkpoint(row.id, n, row.mac, "2026-12-07T10:00:00+00:00", "vm")
        for n, row in enumerate(rows, start=1)
    ]
    with django_assert_max_num_queries(2):  # the rows up to the newest, then those after it
        assert checkpoints.check(signed * 2) == ([], 0)
    # One wrong among many: the first that fails is named, with how many more fail.
    signed[9] = checkpoints.Checkpoint(rows[9].id, 11, rows[9].mac, "t", "vm")
    signed[20] = checkpoints.Checkpoint(rows[20].id, 21, "forged", "t", "vm")
    signed[25] = checkpoints.Checkpoint(rows[25].id + 1000, 26, "x", "t", "vm")
    problems, after = checkpoints.check(signed)
    assert [p.row_id for p in problems] == [rows[9].id, rows[9].id, rows[10].id]
    assert problems[0].reason.startswith("10 rows up to it, but the checkpoint signed at t on vm")
    assert (
        f"counted 2 rows after row {rows[8].id}, more than the ids between them"
        in problems[1].reason
    )
    assert problems[2].reason.startswith("the checkpoint signed at 2026-12-07T10:00:00+00:00")
    assert problems[2].reason.endswith(
        f"and 2 more checkpoint(s) after it fail too, up to row {rows[25].id + 1000}"
    )
    assert after == 0


def test_a_row_deleted_before_the_checkpoint_and_the_chain_relinked_is_caught(sink, keys, capsys):
    first, *_ = [record() for _ in range(3)]
    checkpoint_audit_log()
    second = AuditEvent.objects.order_by("id")[1]
    with triggers_lifted():
        raw(f"DELETE FROM {TABLE} WHERE id = %s", [first.id])  # noqa: S608
    with pytest.raises(CommandError) as failure:
        verify_audit_log(capsys, sink, keys[1])
    assert f"row {second.id}: does not follow" in str(failure.value)
    assert "but the checkpoint signed at" in capsys.readouterr().err


def test_a_missing_checkpoint_file_is_an_error_with_the_fix(keys, tmp_path, capsys):
    record(1)
    with pytest.raises(CommandError, match=r"missing.jsonl cannot be read .*copy it from the sink"):
        verify_audit_log(capsys, tmp_path / "missing.jsonl", keys[1])
    assert not AuditEvent.objects.filter(event="audit_verified").exists()


def test_a_checkpoint_signed_by_another_key_is_an_error(sink, keys, tmp_path, capsys):
    record(1)
    checkpoint_audit_log()
    other = tmp_path / "other.pem"
    call_command("generate_checkpoint_key", str(other), stdout=io.StringIO())
    with pytest.raises(CommandError, match="is not signed by this public key: give the public"):
        verify_audit_log(capsys, sink, tmp_path / "other.pem.pub")
    with pytest.raises(CommandError, match="holds no readable public key"):
        verify_audit_log(capsys, sink, keys[0].with_name("nothing.pub"))


def test_a_forged_line_does_not_verify(sink, keys, capsys):
    row = record(1)
    checkpoint_audit_log()
    (line,) = lines(sink)
    sink.write_text(json.dumps({**line, "count": 0}) + "\n")
    with pytest.raises(CommandError, match=f"checkpoint at row {row.id} .* not signed by this"):
        verify_audit_log(capsys, sink, keys[1])


def test_checkpoint_options_go_together(capsys, sink):
    with pytest.raises(CommandError, match="--checkpoints and --checkpoint-public-key go together"):
        call_command("verify_audit_log", checkpoints=[sink])


def test_due_after_the_configured_rows(sink, django_capture_on_commit_callbacks):
    with override_settings(SECUREGATHER_CHECKPOINT_ROWS=3):
        appended(record(), django_capture_on_commit_callbacks)  # starts the count
        row = record()
        appended(row, django_capture_on_commit_callbacks)
        assert lines(sink) == []
        row = record(2)
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            checkpoints.after_append(row.id, row.mac)
        assert lines(sink) == []  # not before the rows commit
        callbacks[0]()
    assert [(line["last_id"], line["count"]) for line in lines(sink)] == [(row.id, 4)]


def test_due_after_the_configured_time_and_only_with_new_rows(
    sink, clock, django_capture_on_commit_callbacks
):
    row = record()
    appended(row, django_capture_on_commit_callbacks)
    clock.shift(timedelta(seconds=299))
    appended(row := record(), django_capture_on_commit_callbacks)
    assert lines(sink) == []
    clock.shift(timedelta(seconds=1))
    appended(row := record(), django_capture_on_commit_callbacks)
    assert [line["last_id"] for line in lines(sink)] == [row.id]
    # Time passing with no new row signs nothing.
    clock.shift(timedelta(hours=1))
    appended(row, django_capture_on_commit_callbacks)
    assert len(lines(sink)) == 1


def test_no_checkpoint_without_a_key(tmp_path, django_capture_on_commit_callbacks):
    row = record()
    with override_settings(SECUREGATHER_CHECKPOINT_FILE=str(tmp_path / "c.jsonl")):
        with django_capture_on_commit_callbacks() as callbacks:
            checkpoints.after_append(row.id, row.mac)
        assert callbacks == []
        with pytest.raises(CommandError, match="checkpoints are off: set SECUREGATHER_CHECK"):
            checkpoint_audit_log()


def test_each_line_is_appended_and_synced(sink, monkeypatch):
    opened, synced = [], []
    real_open, real_fsync = os.open, os.fsync
    monkeypatch.setattr(os, "open", lambda p, f, *a: opened.append(f) or real_open(p, f, *a))
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    record()
    checkpoint_audit_log()
    assert opened and opened[-1] & os.O_APPEND
    assert len(synced) == 1


def test_a_checkpoint_goes_to_syslog_too(keys, sink, monkeypatch):
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.settimeout(5)
    port = server.getsockname()[1]
    row = record()
    try:
        with override_settings(SECUREGATHER_CHECKPOINT_SYSLOG=f"udp://127.0.0.1:{port}"):
            checkpoint_audit_log()
        message = server.recv(4096).decode()
    finally:
        server.close()
        checkpoints._syslog.cache_clear()
    assert "securegather-checkpoint: " in message
    checkpoint = checkpoints.Checkpoint.from_line(message, checkpoints.public_key(keys[1]))
    assert checkpoint is not None
    assert (checkpoint.last_id, checkpoint.mac) == (row.id, row.mac)


def test_a_checkpoint_syslog_did_not_take_is_not_reported_written(sink, tmp_path):
    # SysLogHandler.emit hands its own errors to handleError, which only prints them.
    row = record()
    try:
        with (
            override_settings(
                SECUREGATHER_CHECKPOINT_FILE="",
                SECUREGATHER_CHECKPOINT_SYSLOG=str(tmp_path / "no-such-socket"),
            ),
            pytest.raises(CommandError, match=r"No checkpoint written: .*no-such-socket"),
        ):
            checkpoint_audit_log()
    finally:
        checkpoints._syslog.cache_clear()
    assert checkpoints.schedule.last_id != row.id  # not written: the next run tries again


def test_a_call_step_writes_the_checkpoint_that_falls_due_once_it_commits(
    sink, call, demo_account, django_capture_on_commit_callbacks
):
    with override_settings(SECUREGATHER_CHECKPOINT_ROWS=2):
        call.start()  # starts the count
        with django_capture_on_commit_callbacks(execute=True):
            call.card("1234")
    newest = AuditEvent.objects.order_by("-id").first()
    assert [(line["last_id"], line["mac"]) for line in lines(sink)] == [(newest.id, newest.mac)]
