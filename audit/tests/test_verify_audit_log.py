import errno
import io
import os
import threading
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections
from django.test import override_settings

from audit.chain import compute_mac
from audit.models import AuditChainHead, AuditEvent
from conftest import TABLE, raw, triggers_lifted
from keys.keyring import Key
from keys.models import KeyRecord

CALLS = 200


def verify_audit_log(capsys, **options):
    call_command("verify_audit_log", **options)
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
def test_rows_under_a_dropped_key_fail_with_the_fix_even_after_a_rotation(capsys):
    with override_settings(SECUREGATHER_KEYS="gone:" + "cc" * 32):
        AuditEvent.record("call_started", "info")
    AuditEvent.record("call_started", "info")
    AuditEvent.record("key_rotated", "success", actor="system", channel="system")
    with pytest.raises(CommandError) as failure:
        verify_audit_log(capsys)
    assert str(failure.value) == (
        "Audit log not verified: 1 row(s) are signed under key id 'gone', which the keyring "
        "lacks, so they cannot be checked: a key dropped from the ring, or rows rewritten under a "
        "key of someone else's. Put the key back in SECUREGATHER_KEYS as retired "
        "('gone:<hex>:retired'); or, once you have checked why it is gone, accept its rows with "
        "--accept-dropped-key gone."
    )
    last = AuditEvent.objects.order_by("id").last()
    assert (last.event, last.outcome, last.detail["unverifiable"]) == (
        "audit_verified",
        "failure",
        1,
    )


@pytest.mark.django_db
def test_a_dropped_key_accepted_on_the_command_line_is_reported_with_its_rows(capsys):
    with override_settings(SECUREGATHER_KEYS="gone:" + "cc" * 32):
        AuditEvent.record("call_started", "info")
        AuditEvent.record("call_started", "info")
    AuditEvent.record("call_started", "info")
    result = verify_audit_log(capsys, accept_dropped_key=["gone", "never"])
    assert "Audit log intact: 3 rows checked." in result.out
    assert result.err.splitlines() == [
        "2 row(s) signed under key 'gone' were not checked: accepted with --accept-dropped-key.",
        "0 row(s) signed under key 'never' were not checked: accepted with --accept-dropped-key.",
    ]
    last = AuditEvent.objects.order_by("id").last()
    assert last.detail["accepted"] == {"gone": 2, "never": 0}


@pytest.mark.django_db
def test_a_log_rechained_under_a_key_id_planted_in_the_database_fails(call, demo_account, capsys):
    play_calls(call, 2)
    # Whoever holds the service's database login plants a key id, re-signs every row under a key
    # of their own, moves the head, and waits for someone to run rotate_keys.
    KeyRecord.objects.create(kid="k0", check_value="0" * 16)
    forger = Key("k0", os.urandom(32))
    previous = ""
    with triggers_lifted():
        for row in AuditEvent.objects.order_by("id"):
            row.prev_mac = previous
            previous = compute_mac(row, forger)
            raw(
                f"UPDATE {TABLE} SET prev_mac = %s, mac = %s WHERE id = %s",  # noqa: S608
                [row.prev_mac, previous, row.id],
            )
    AuditChainHead.objects.update(mac=previous)
    call_command("rotate_keys", stdout=io.StringIO())
    assert not AuditEvent.objects.filter(event="key_rotated").exists()  # nothing to rotate
    rows = AuditEvent.objects.count()
    reason = rf"not verified: {rows} row\(s\) are signed under key id 'k0', which the keyring"
    with pytest.raises(CommandError, match=reason):
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


def cut_off_newest(count: int, *, move_head_back: bool = False) -> int:
    """Delete the newest ``count`` rows as a database owner could; the newest row left's id."""
    ids = list(AuditEvent.objects.order_by("id").values_list("id", flat=True))
    keep = ids[-count - 1]
    with triggers_lifted():
        raw(f"DELETE FROM {TABLE} WHERE id > %s", [keep])  # noqa: S608
    if move_head_back:
        AuditChainHead.objects.update(mac=AuditEvent.objects.get(id=keep).mac)
    return keep


@pytest.mark.django_db
def test_rows_cut_off_the_end_break_the_chain_at_its_head(call, demo_account, capsys):
    play_calls(call, 3)
    newest_left = cut_off_newest(4)
    expected = rf"broken at row {newest_left}: is the newest row, but the chain's head links"
    with pytest.raises(CommandError, match=expected):
        verify_audit_log(capsys)
    with triggers_lifted():
        raw(f"DELETE FROM {TABLE}")  # noqa: S608
    with pytest.raises(CommandError, match=r"broken at its end: no row is left, but the chain's"):
        verify_audit_log(capsys)


@pytest.mark.django_db
@pytest.mark.parametrize("head", ["deleted", "emptied"])
def test_rows_cut_off_with_the_head_deleted_or_emptied_break_the_chain(
    call, demo_account, capsys, head
):
    play_calls(call, 3)
    newest_left = cut_off_newest(4)
    if head == "deleted":
        AuditChainHead.objects.all().delete()
    else:
        AuditChainHead.objects.update(mac="")
    expected = rf"broken at row {newest_left}: rows were written, but the chain's head is deleted"
    with pytest.raises(CommandError, match=expected):
        verify_audit_log(capsys)


@pytest.mark.django_db
def test_an_anchor_file_shows_rows_cut_off_with_the_head_moved_back(
    call, demo_account, capsys, tmp_path
):
    anchor = tmp_path / "audit-anchor"
    play_calls(call, 2)
    assert "this check starts one" in verify_audit_log(capsys, anchor_file=anchor).err
    checked = AuditEvent.objects.exclude(event="audit_verified").order_by("id").last()
    assert anchor.read_text() == f"{checked.id} {checked.mac}\n"
    play_calls(call, 2)
    assert "Anchor moved to row" in verify_audit_log(capsys, anchor_file=anchor).out
    moved_to = int(anchor.read_text().split()[0])
    assert moved_to > checked.id
    # Cut back past the anchor, and set the head to the newest row left: the chain holds.
    newest_left = cut_off_newest(6, move_head_back=True)
    assert newest_left < moved_to
    with pytest.raises(CommandError, match=rf"broken at row {moved_to}: is gone, and the last"):
        verify_audit_log(capsys, anchor_file=anchor)
    # A broken log leaves the anchor where it was.
    assert int(anchor.read_text().split()[0]) == moved_to
    last = AuditEvent.objects.order_by("id").last()
    assert (last.event, last.detail["anchor"]) == ("audit_verified", moved_to)


@pytest.mark.django_db
def test_an_anchor_row_rewritten_is_named(call, demo_account, capsys, tmp_path):
    anchor = tmp_path / "audit-anchor"
    play_calls(call, 1)
    verify_audit_log(capsys, anchor_file=anchor)
    row_id = int(anchor.read_text().split()[0])
    with triggers_lifted():
        raw(f"UPDATE {TABLE} SET outcome = 'failure' WHERE id = %s", [row_id])  # noqa: S608
    with pytest.raises(CommandError, match=rf"broken at row {row_id}: its MAC does not match"):
        verify_audit_log(capsys, anchor_file=anchor)
    anchor.write_text(f"{row_id} {'k:' + '0' * 64}\n")  # an anchor taken from another log
    with triggers_lifted():
        raw(f"UPDATE {TABLE} SET outcome = 'info' WHERE id = %s", [row_id])  # noqa: S608
    with pytest.raises(CommandError, match=rf"row {row_id}: is not the row the last check ended"):
        verify_audit_log(capsys, anchor_file=anchor)


@pytest.mark.django_db
@pytest.mark.parametrize("content", ["", "12", "twelve k:00", "12 no-mac", "\xff"])
def test_an_unreadable_anchor_stops_the_check_and_is_left_alone(capsys, tmp_path, content):
    AuditEvent.record("call_started", "info")
    anchor = tmp_path / "audit-anchor"
    anchor.write_text(content, encoding="latin-1")
    with pytest.raises(CommandError, match="holds no anchor this command wrote"):
        verify_audit_log(capsys, anchor_file=anchor)
    assert anchor.read_text(encoding="latin-1") == content
    assert not AuditEvent.objects.filter(event="audit_verified").exists()


@pytest.mark.django_db
def test_an_anchor_that_cannot_be_written_fails_the_run(capsys, tmp_path, monkeypatch):
    AuditEvent.record("call_started", "info")

    def disk_full(*args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", disk_full)
    anchor = tmp_path / "audit-anchor"
    with pytest.raises(CommandError, match="intact, but the anchor could not be written"):
        verify_audit_log(capsys, anchor_file=anchor)
    assert list(tmp_path.iterdir()) == []  # nor is its temporary file left behind


@pytest.mark.django_db
def test_an_anchor_in_no_directory_is_refused_before_the_check(capsys, tmp_path):
    AuditEvent.record("call_started", "info")
    with pytest.raises(CommandError, match=r"missing is not a directory: no anchor can be kept"):
        verify_audit_log(capsys, anchor_file=tmp_path / "missing" / "audit-anchor")
    assert not AuditEvent.objects.filter(event="audit_verified").exists()


@pytest.mark.django_db
def test_the_anchor_and_its_directory_entry_reach_the_disk(capsys, tmp_path, monkeypatch):
    AuditEvent.record("call_started", "info")
    synced = []
    fsync = os.fsync

    def recording_fsync(fd):
        synced.append(Path(os.readlink(f"/proc/self/fd/{fd}")))
        fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    anchor = tmp_path / "audit-anchor"
    verify_audit_log(capsys, anchor_file=anchor)
    # The written file (under its temporary name), then the directory that now names it.
    written, *rest = synced
    assert (written.parent, rest) == (tmp_path, [tmp_path])


def anchored_log(call, capsys, anchor, before: int = 2, since: int = 1) -> tuple[int, list[int]]:
    """Calls, a check that leaves its anchor, more calls: the anchor's row, and the rows since."""
    play_calls(call, before)
    verify_audit_log(capsys, anchor_file=anchor)
    start = int(anchor.read_text().split()[0])
    play_calls(call, since)
    after = AuditEvent.objects.filter(id__gt=start).order_by("id").values_list("id", flat=True)
    return start, list(after)


@pytest.mark.django_db
def test_from_the_anchor_checks_only_the_rows_since_the_last_check(
    call, demo_account, capsys, tmp_path
):
    anchor = tmp_path / "audit-anchor"
    start, after = anchored_log(call, capsys, anchor, before=3, since=2)
    early = AuditEvent.objects.filter(id__lt=start).order_by("id").first()
    since = len(after) + 1  # and the anchor's row
    out = verify_audit_log(capsys, anchor_file=anchor, from_anchor=True).out
    assert f"Audit log intact: {since} rows checked, from row {start}." in out
    last = AuditEvent.objects.order_by("id").last()
    assert (last.detail["first_id"], last.detail["checked"]) == (start, since)
    # A row edited before the anchor is the full check's to find; one after it, this one's.
    with triggers_lifted():
        raw(f"UPDATE {TABLE} SET actor = 'edited' WHERE id = %s", [early.id])  # noqa: S608
    assert "Audit log intact" in verify_audit_log(capsys, anchor_file=anchor, from_anchor=True).out
    with pytest.raises(CommandError, match=rf"broken at row {early.id}: its MAC does not match"):
        verify_audit_log(capsys, anchor_file=anchor)
    later = AuditEvent.objects.filter(id__gt=int(anchor.read_text().split()[0])).first()
    with triggers_lifted():
        raw(f"UPDATE {TABLE} SET actor = 'edited' WHERE id = %s", [later.id])  # noqa: S608
    with pytest.raises(CommandError, match=rf"broken at row {later.id}: its MAC does not match"):
        verify_audit_log(capsys, anchor_file=anchor, from_anchor=True)


@pytest.mark.django_db
def test_from_the_anchor_needs_an_anchor_file(capsys, tmp_path):
    with pytest.raises(CommandError, match="--from-anchor needs --anchor-file"):
        verify_audit_log(capsys, from_anchor=True)
    AuditEvent.record("call_started", "info")
    result = verify_audit_log(capsys, anchor_file=tmp_path / "a", from_anchor=True)
    assert "this check starts one" in result.err
    assert "Audit log intact: 1 rows checked." in result.out  # no anchor yet: every row


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("deleted", "named"),
    [("the anchor's row", "is gone, and the last"), ("the row after it", "does not follow")],
)
def test_from_the_anchor_finds_rows_deleted_at_the_anchor(
    call, demo_account, capsys, tmp_path, deleted, named
):
    anchor = tmp_path / "audit-anchor"
    start, after = anchored_log(call, capsys, anchor)
    # The anchor's row gone is named as such; the row after it gone, by the row that follows.
    gone, bad = (start, start) if deleted == "the anchor's row" else (after[0], after[1])
    with triggers_lifted():
        raw(f"DELETE FROM {TABLE} WHERE id = %s", [gone])  # noqa: S608
    with pytest.raises(CommandError, match=rf"broken at row {bad}: {named}"):
        verify_audit_log(capsys, anchor_file=anchor, from_anchor=True)


@pytest.mark.django_db
def test_from_the_anchor_the_first_row_left_must_link_to_the_anchor(
    call, demo_account, capsys, tmp_path
):
    anchor = tmp_path / "audit-anchor"
    start, after = anchored_log(call, capsys, anchor)
    with triggers_lifted():
        raw(f"DELETE FROM {TABLE} WHERE id IN (%s, %s)", [start, after[0]])  # noqa: S608
    with pytest.raises(CommandError, match=rf"broken at row {start}: is gone"):
        verify_audit_log(capsys, anchor_file=anchor, from_anchor=True)
    assert f"also row {after[1]}: does not follow the row before it" in capsys.readouterr().err


@pytest.mark.django_db
def test_from_the_anchor_with_nothing_left_after_it_names_the_anchor(capsys, tmp_path):
    anchor = tmp_path / "audit-anchor"
    AuditEvent.record("call_started", "info")
    verify_audit_log(capsys, anchor_file=anchor)
    start = int(anchor.read_text().split()[0])
    with triggers_lifted():
        raw(f"DELETE FROM {TABLE} WHERE id >= %s", [start])  # noqa: S608
    with pytest.raises(CommandError, match=rf"broken at row {start}: is gone") as failure:
        verify_audit_log(capsys, anchor_file=anchor, from_anchor=True)
    assert "(1 problem(s) in 0 rows)" in str(failure.value)


@pytest.mark.django_db
def test_a_key_id_holding_other_bytes_stops_the_check_before_any_verdict(capsys):
    AuditEvent.record("call_started", "info")
    KeyRecord.objects.update_or_create(kid="test2", defaults={"check_value": "0" * 16})
    with pytest.raises(CommandError, match=r"Key id 'test2' holds other bytes .*E007"):
        verify_audit_log(capsys)
    assert not AuditEvent.objects.filter(event="audit_verified").exists()


@pytest.mark.django_db
@override_settings(SECUREGATHER_KEYS="k1:nothex")
def test_an_unusable_keyring_stops_the_check_with_its_reason(capsys):
    with pytest.raises(CommandError, match="The keyring is unusable: key 'k1' is not hexadecimal"):
        verify_audit_log(capsys)


@pytest.mark.django_db
def test_a_dropped_key_accepted_up_to_a_row_does_not_cover_rows_appended_under_it_since(capsys):
    with override_settings(SECUREGATHER_KEYS="gone:" + "cc" * 32):
        last_of_its_own = AuditEvent.record("call_started", "info")
    AuditEvent.record("call_started", "info")
    accepted = f"gone:{last_of_its_own.id}"
    assert "Audit log intact" in verify_audit_log(capsys, accept_dropped_key=[accepted]).out
    # A row appended under the dropped key's id since: the ring cannot check it, so whoever
    # wrote it could have written anything.
    with override_settings(SECUREGATHER_KEYS="gone:" + "cc" * 32):
        AuditEvent.record("call_started", "info")
    with pytest.raises(CommandError, match="1 row\\(s\\) are signed under key id 'gone'"):
        call_command("verify_audit_log", "--accept-dropped-key", accepted)


def test_an_accepted_key_with_no_row_id_after_it_is_refused_by_the_parser():
    with pytest.raises(CommandError, match="is not KID or KID:LAST_ID"):
        call_command("verify_audit_log", "--accept-dropped-key", "gone:last")
