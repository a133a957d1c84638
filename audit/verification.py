"""Verifying the stored audit log: every row's MAC and link, streamed in id order, and the
chain's head against the newest row, recorded as an ``audit_verified`` row."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from audit import checkpoints as checkpoint_module
from audit.chain import Anchor, Problem, Report, verify
from audit.checkpoints import Checkpoint
from audit.models import AuditChainHead, AuditEvent


def verify_log(
    chunk_size: int = 2000,
    anchor: Anchor | None = None,
    *,
    from_anchor: bool = False,
    accepted: Iterable[str] = (),
    checkpoints: Sequence[Checkpoint] = (),
) -> Report:
    """Verify the audit table, streamed in id order, and record that it was done.

    ``anchor``: where the last check ended (``Report.anchor``), kept outside the database.
    ``from_anchor``: check only the anchor's row and those after it, written since the last
    check: a check as long as they are. A run without it checks every row.
    ``accepted``: key ids the ring lacks whose rows the operator accepts unchecked.
    ``checkpoints``: signed checkpoints kept off the database: each one's row must be there,
    with its MAC and as many rows up to it, which shows rows cut off the end or the whole log
    wiped, even when a later checkpoint was signed over the shorter log.
    """
    # Read before the head: a row and the head's move to it commit together, so rows seen here
    # mean the head read next links to one of them, unless someone deleted or emptied it.
    written = AuditEvent.objects.exists()
    # Read before the rows, never after: rows appended meanwhile move the head on, and the
    # stream (which starts later) has them, so the head it was read at is among its rows.
    head = AuditChainHead.objects.filter(pk=AuditChainHead.ID).values_list("mac", flat=True)
    head_mac = head.first() or ""
    rows = AuditEvent.objects.order_by("id")
    start = anchor.row_id if from_anchor and anchor is not None else None
    if start is not None:
        rows = rows.filter(id__gte=start)
    stream = rows.iterator(chunk_size=chunk_size)
    report = verify(stream, accepted, head=head_mac, anchor=anchor, resume=start is not None)
    if written and not head_mac:
        report.problems.append(
            Problem(
                report.last_id or 0,
                "rows were written, but the chain's head is deleted or empty: rows cut off the "
                "end would not show",
            )
        )
    if checkpoints:
        problems, report.after_checkpoint = checkpoint_module.check(checkpoints)
        report.problems = sorted(report.problems + problems, key=lambda p: p.row_id)
    first = report.first_problem
    AuditEvent.record(
        AuditEvent.Event.AUDIT_VERIFIED,
        AuditEvent.Outcome.SUCCESS if report.intact else AuditEvent.Outcome.FAILURE,
        actor="system",
        channel=AuditEvent.Channel.SYSTEM,
        checked=report.checked,
        first_id=report.first_id,
        last_id=report.last_id,
        problems=len(report.problems),
        first_bad_row=first.row_id if first else None,
        unverifiable=sum(report.unverifiable.values()),
        accepted=report.accepted,
        anchor=anchor.row_id if anchor else None,
        checkpoint=max(c.last_id for c in checkpoints) if checkpoints else None,
    )
    return report
