import json

import pytest
from django.test import override_settings

from audit import chain as auditchain
from audit.models import AuditChainHead, AuditEvent
from audit.verification import verify_log
from conftest import TABLE, raw, triggers_lifted
from keys.models import KeyRecord

pytestmark = pytest.mark.django_db

KEY_A = "auditA:" + "aa" * 32
KEY_B = "auditB:" + "bb" * 32


def record(n: int = 1, **detail: object) -> list[AuditEvent]:
    return [
        AuditEvent.record(
            AuditEvent.Event.CALL_STARTED,
            AuditEvent.Outcome.INFO,
            call_sid=f"CA{i:032x}",
            caller="+15005550006",
            **detail,
        )
        for i in range(n)
    ]


def rotated() -> AuditEvent:
    """The row rotate_keys records under the new primary once every value is moved."""
    return AuditEvent.record(
        AuditEvent.Event.KEY_ROTATED, AuditEvent.Outcome.SUCCESS, actor="system", channel="system"
    )


def verify(accepted: tuple[str, ...] = ()) -> auditchain.Report:
    return auditchain.verify(AuditEvent.objects.order_by("id"), accepted)


def test_each_row_links_to_the_one_before_and_names_the_primary_key():
    first, second, third = record(3)
    assert first.prev_mac == ""
    assert (second.prev_mac, third.prev_mac) == (first.mac, second.mac)
    assert {row.mac.partition(":")[0] for row in (first, second, third)} == {"test2"}
    assert len(third.mac.partition(":")[2]) == 64


def test_an_untouched_log_verifies():
    record(5, prompt="card", tries=2, ratio=0.5, nested={"b": [1, 2], "a": None})
    report = verify()
    assert (report.intact, report.checked, report.unverifiable) == (True, 5, {})


def test_mac_covers_what_the_database_hands_back():
    # Tuples become lists, keys sort: the MAC is over the stored JSON, not the Python call.
    row = AuditEvent.record("call_started", "info", path=("a", "b"), z=1, a=2)
    stored = AuditEvent.objects.get(pk=row.pk)
    assert stored.detail == {"path": ["a", "b"], "z": 1, "a": 2}
    assert auditchain.compute_mac(stored, auditchain.get_keyring().primary) == stored.mac


def test_ipv6_origins_verify(rf):
    request = rf.post("/voice/", REMOTE_ADDR="::ffff:10.0.0.1", HTTP_USER_AGENT="TwilioProxy/1.1")
    AuditEvent.record("call_started", "info", request=request)
    AuditEvent.record("call_started", "info", request=rf.post("/", REMOTE_ADDR="2001:DB8::1"))
    assert verify().intact


def test_a_link_local_origin_with_its_zone_verifies(rf):
    # A peer on the same link, as a server's socket names it: the zone is an interface of this
    # host, which the column does not keep. A row must not read as forged for it.
    row = AuditEvent.record(
        "call_started", "info", request=rf.post("/", REMOTE_ADDR="fe80::1%eth0")
    )
    assert AuditEvent.objects.get(pk=row.pk).origin_ip == "fe80::1"
    assert verify().intact


def test_an_edited_field_names_the_row():
    rows = record(4)
    with triggers_lifted():
        raw(f"UPDATE {TABLE} SET outcome = %s WHERE id = %s", ["success", rows[2].id])  # noqa: S608
    report = verify()
    assert not report.intact
    assert report.first_problem.row_id == rows[2].id
    assert "edited or forged" in report.first_problem.reason
    assert len(report.problems) == 1


def test_an_edited_detail_is_caught():
    rows = record(2, reason="empty")
    with triggers_lifted():
        raw(
            f"UPDATE {TABLE} SET detail = %s WHERE id = %s",  # noqa: S608
            [json.dumps({"reason": "not_4_digits"}), rows[0].id],
        )
    assert verify().first_problem.row_id == rows[0].id


def test_a_deleted_row_is_caught_at_the_row_after_it():
    rows = record(4)
    with triggers_lifted():
        raw(f"DELETE FROM {TABLE} WHERE id = %s", [rows[1].id])  # noqa: S608
    problem = verify().first_problem
    assert problem.row_id == rows[2].id
    assert problem.reason == (
        f"does not follow the row before it (row {rows[0].id}): a row after row {rows[0].id} "
        "was deleted, or this one inserted"
    )


def test_deleting_the_first_row_is_caught():
    rows = record(3)
    with triggers_lifted():
        raw(f"DELETE FROM {TABLE} WHERE id = %s", [rows[0].id])  # noqa: S608
    problem = verify().first_problem
    assert problem.row_id == rows[1].id
    assert "(the start of the log): a row after the start of the log was deleted" in problem.reason


def test_a_row_inserted_out_of_band_is_caught_even_when_linked():
    rows = record(2)
    # A forger can copy the last MAC into prev_mac, but cannot make the row's own MAC.
    forged = AuditEvent(event="verified", outcome="success", prev_mac=rows[-1].mac, mac="test2:00")
    forged.save(force_insert=True)
    report = verify()
    assert [p.row_id for p in report.problems] == [forged.id]
    assert "edited or forged" in report.first_problem.reason


def test_a_row_under_a_made_up_key_id_is_unverifiable_and_fails():
    rows = record(2)
    forged = AuditEvent(event="verified", outcome="success", prev_mac=rows[-1].mac, mac="ghost:00")
    forged.save(force_insert=True)
    report = verify()
    assert (report.intact, report.problems, report.unverifiable) == (False, [], {"ghost": 1})


def test_a_key_record_does_not_make_a_key_id_acceptable():
    with override_settings(SECUREGATHER_KEYS=KEY_A):
        record(1)
    assert KeyRecord.objects.filter(kid="auditA").exists()
    with override_settings(SECUREGATHER_KEYS=KEY_B):
        report = verify()
    assert (report.intact, report.unverifiable) == (False, {"auditA": 1})


def test_a_row_without_a_mac_is_caught():
    record(1)
    bare = AuditEvent(event="verified", outcome="success")
    bare.save(force_insert=True)
    assert "has no MAC" in verify().first_problem.reason


def test_a_copied_mac_does_not_sign_other_content():
    rows = record(2)
    with triggers_lifted():
        raw(
            f"UPDATE {TABLE} SET call_sid = %s WHERE id = %s",  # noqa: S608
            [rows[1].call_sid, rows[0].id],
        )
    assert verify().first_problem.row_id == rows[0].id


def test_moving_a_row_to_the_end_is_caught():
    rows = record(3)
    with triggers_lifted():
        raw(f"UPDATE {TABLE} SET id = %s WHERE id = %s", [rows[2].id + 10, rows[0].id])  # noqa: S608
    assert [p.row_id for p in verify().problems] == [rows[1].id, rows[2].id + 10]


def test_rows_under_a_dropped_key_the_operator_accepted_are_counted_apart():
    with override_settings(SECUREGATHER_KEYS=KEY_A):
        old = record(3)
    with override_settings(SECUREGATHER_KEYS=f"{KEY_B},{KEY_A}"):
        new = record(2)
        rotated()
    with override_settings(SECUREGATHER_KEYS=KEY_B):
        report = verify(accepted=("auditA", "unused"))
    assert (report.intact, report.problems, report.unverifiable) == (True, [], {})
    assert (report.accepted, report.checked) == ({"auditA": 3, "unused": 0}, 6)
    assert new[0].prev_mac == old[-1].mac


def test_a_later_rotation_does_not_make_rows_under_a_dropped_key_acceptable():
    with override_settings(SECUREGATHER_KEYS=KEY_A):
        record(2)
    with override_settings(SECUREGATHER_KEYS=f"{KEY_B},{KEY_A}"):
        rotated()
    with override_settings(SECUREGATHER_KEYS=KEY_B):
        report = verify()
    assert (report.intact, report.problems, report.unverifiable) == (False, [], {"auditA": 2})


def test_a_log_rewritten_under_a_dropped_key_id_is_caught():
    with override_settings(SECUREGATHER_KEYS=KEY_A):
        record(1)
    with override_settings(SECUREGATHER_KEYS=f"{KEY_B},{KEY_A}"):
        record(1)
        rotated()
        later = record(2)
    # Whoever can drop the triggers rewrites the rows after the rotation under the dropped id:
    # the ring cannot check those MACs, so they fail unless the operator accepts the id.
    with triggers_lifted():
        for row in later:
            raw(f"UPDATE {TABLE} SET mac = %s WHERE id = %s", ["auditA:" + "0" * 64, row.id])  # noqa: S608
    with override_settings(SECUREGATHER_KEYS=KEY_B):
        report = verify()
        assert (report.intact, report.unverifiable) == (False, {"auditA": 3})
        # Accepting the dropped id accepts its MACs unchecked, never its links.
        report = verify(accepted=("auditA",))
    assert report.first_problem.row_id == later[1].id
    assert not report.intact


def test_rows_under_a_retired_key_still_verify():
    with override_settings(SECUREGATHER_KEYS=KEY_A):
        record(2)
    with override_settings(SECUREGATHER_KEYS=f"{KEY_B},{KEY_A}:retired"):
        (row,) = record(1)
        report = verify()
    assert row.mac.startswith("auditB:")
    assert (report.intact, report.unverifiable, report.checked) == (True, {}, 3)


def test_links_after_unverifiable_rows_still_catch_tampering():
    with override_settings(SECUREGATHER_KEYS=KEY_A):
        old = record(2)
    with override_settings(SECUREGATHER_KEYS=f"{KEY_B},{KEY_A}"):
        new = record(3)
        rotated()
    with triggers_lifted():
        raw(f"DELETE FROM {TABLE} WHERE id = %s", [new[0].id])  # noqa: S608
        raw(
            f"UPDATE {TABLE} SET prev_mac = %s WHERE id = %s",  # noqa: S608
            [old[-1].mac, new[1].id],
        )
    with override_settings(SECUREGATHER_KEYS=KEY_B):
        report = verify(accepted=("auditA",))
    # The forger relinked the row after the deletion, which breaks that row's own MAC.
    assert [p.row_id for p in report.problems] == [new[1].id]
    assert report.accepted == {"auditA": 2}


def test_a_rotated_primary_signs_new_rows_and_old_ones_still_verify():
    with override_settings(SECUREGATHER_KEYS=KEY_A):
        record(2)
    with override_settings(SECUREGATHER_KEYS=f"{KEY_B},{KEY_A}"):
        (row,) = record(1)
        assert row.mac.startswith("auditB:")
        report = verify()
    assert (report.intact, report.unverifiable) == (True, {})


def test_verify_log_records_its_own_run():
    record(2)
    report = verify_log()
    row = AuditEvent.objects.order_by("id").last()
    assert (row.event, row.outcome, row.actor, row.channel) == (
        "audit_verified",
        "success",
        "system",
        "system",
    )
    assert row.detail["checked"] == report.checked == 2
    assert verify().intact


def test_a_batch_appends_its_rows_at_its_end_in_order():
    record(1)
    with AuditEvent.batched():
        held = record(3)
        assert AuditEvent.objects.count() == 1  # nothing appended yet
        assert all(row.pk is None for row in held)
    assert list(AuditEvent.objects.order_by("id").values_list("call_sid", flat=True)[1:]) == [
        row.call_sid for row in held
    ]
    assert verify().intact


def test_a_batch_takes_the_chain_once_for_all_its_rows(django_assert_num_queries):
    record(1)  # the process has recorded its key use
    # The head, locked; its UPDATE to the last row's MAC; one INSERT of the three rows.
    with django_assert_num_queries(3), AuditEvent.batched():
        record(3)


def test_a_batch_that_raises_appends_nothing():
    with pytest.raises(RuntimeError), AuditEvent.batched():
        record(2)
        raise RuntimeError
    assert not AuditEvent.objects.exists()
    record(1)
    assert verify().intact


def test_the_head_holds_the_newest_rows_mac():
    rows = record(3)
    assert AuditChainHead.objects.get().mac == rows[-1].mac


def test_a_missing_head_starts_again_at_the_newest_row():
    record(2)
    AuditChainHead.objects.all().delete()  # as a flush leaves it
    record(1)
    report = verify()
    assert (report.intact, report.checked) == (True, 3)
    assert AuditChainHead.objects.get().mac == AuditEvent.objects.order_by("-id").first().mac


def test_a_callers_digest_is_covered_by_the_rows_mac():
    # Moving a call onto another caller's digest would hide it from a search by number.
    rows = record(2)
    other = AuditEvent.record(AuditEvent.Event.CALL_STARTED, "info", caller="+15005550077")
    assert rows[0].caller_digest and other.caller_digest != rows[0].caller_digest
    with triggers_lifted():
        raw(
            f"UPDATE {TABLE} SET caller_digest = %s WHERE id = %s",  # noqa: S608
            [other.caller_digest, rows[1].id],
        )
    assert verify().first_problem.row_id == rows[1].id


def test_rows_without_a_callers_digest_are_signed_as_rows_were_before_it():
    # Rows written before the column existed hold NULL: their MAC covers the fields it did then.
    (row,) = record(1)
    before = auditchain.canonical(row)
    assert b'"caller_digest"' in before
    row.caller_digest = None
    without = json.loads(auditchain.canonical(row))
    assert "caller_digest" not in without
    assert sorted(without) == sorted(
        [*(f for f in auditchain.CHAINED_FIELDS if f != "caller_digest"), "prev_mac"]
    )
    staff_row = AuditEvent.record(AuditEvent.Event.STAFF_LOGIN, "success", actor="olive")
    assert staff_row.caller_digest is None
    assert verify().intact
