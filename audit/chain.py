"""The audit log's hash chain: each row's HMAC covers its content and the previous row's MAC.

A row's ``mac`` is ``kid:hex``: HMAC-SHA256 under the ``audit`` subkey of the keyring's primary
key at the time it was written, over the row's canonical content and ``prev_mac`` (the MAC of the
row before it, by id). Editing a row breaks its own MAC; deleting one breaks the link of the row
after it; a row inserted out of band has no valid MAC, since the key is not in the database.

Each row stores the previous MAC as well as its own, so a verifier that lacks an old key (retired
from the ring) still checks every later link: a row's MAC needs only its own key, and the link is
a comparison of stored values. Rows under a key the ring lacks cannot be checked: they fail the
verification unless the operator accepted that key id (``accepted``), never because a table or a
later row vouches for it, since whoever can write the database can write those too.

This module computes and checks MACs; it reads no table. Appending is the models' work
(``AuditChainHead.append``), and verifying the stored log is audit/verification.py's.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Protocol

from keys.keyring import Key, get_keyring

PURPOSE = b"securegather.AuditEvent|"
# The fields a MAC covers, in this order. Appending a field to the model means appending it here
# (rows written before keep verifying only if the new field's empty value is left out for them).
CHAINED_FIELDS = (
    "created_at",
    "event",
    "outcome",
    "channel",
    "actor",
    "call_sid",
    "caller",
    "account_number",
    "key_id",
    "origin_ip",
    "user_agent",
    "detail",
    # Appended later: rows written before it have none, and their MAC leaves it out (canonical).
    "caller_digest",
)
# Fields a row's MAC covers only when set, so that the rows written before each was added
# still verify.
LATER_FIELDS = ("caller_digest",)


class ChainedRow(Protocol):
    """What a MAC covers and a verification reads of an audit row (audit.models.AuditEvent)."""

    id: int
    created_at: datetime
    event: str
    caller_digest: str | None
    origin_ip: str | None
    prev_mac: str
    mac: str


@lru_cache(maxsize=16)
def _audit_key(key: Key) -> bytes:
    return key.subkey("audit")


def _canonical_ip(value: str | None) -> str:
    # PostgreSQL's inet and Python spell some IPv6 forms differently: compare parsed addresses.
    return str(ipaddress.ip_address(value)) if value else ""


def _canonical_time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def canonical(event: ChainedRow) -> bytes:
    """The bytes a row's MAC covers: its content and the MAC of the row before it."""
    values: dict[str, Any] = {name: getattr(event, name) for name in CHAINED_FIELDS}
    for name in LATER_FIELDS:
        if not values[name]:
            del values[name]
    values["created_at"] = _canonical_time(event.created_at)
    values["origin_ip"] = _canonical_ip(event.origin_ip)
    values["prev_mac"] = event.prev_mac
    return json.dumps(values, sort_keys=True, separators=(",", ":")).encode()


def compute_mac(event: ChainedRow, key: Key) -> str:
    digest = hmac.new(_audit_key(key), PURPOSE + canonical(event), hashlib.sha256).hexdigest()
    return f"{key.kid}:{digest}"


@dataclass
class Problem:
    row_id: int
    reason: str

    def __str__(self) -> str:
        # Row 0 is none: the log has no row left.
        return f"row {self.row_id}: {self.reason}" if self.row_id else f"its end: {self.reason}"


@dataclass(frozen=True)
class Anchor:
    """Where a verification ended, kept outside the database: the newest row it checked.

    The chain alone cannot show rows cut off its newest end, nor can the database, whose owner
    could cut them; an anchor kept where that owner cannot write (a file on the host that runs
    the check) can: the next check finds its row gone or changed.
    """

    row_id: int
    mac: str

    def __str__(self) -> str:
        return f"{self.row_id} {self.mac}"

    @classmethod
    def parse(cls, text: str) -> Anchor:
        """The anchor ``str()`` wrote. Raises ValueError for anything else."""
        row_id, mac = text.split()
        if not (row_id.isascii() and row_id.isdigit() and ":" in mac):
            raise ValueError("not an anchor")
        return cls(int(row_id), mac)


@dataclass
class Report:
    """What a verification found: ``problems`` are tampering; rows under a key the ring lacks
    are ``unverifiable``, or ``accepted`` when the operator accepted their key id."""

    checked: int = 0
    first_id: int | None = None
    last_id: int | None = None
    last_mac: str = ""
    problems: list[Problem] = field(default_factory=list)
    # key id → rows signed under it that this keyring cannot check, and nobody accepted.
    unverifiable: dict[str, int] = field(default_factory=dict)
    # key id → rows signed under it, unchecked, that the operator accepted (every id accepted).
    accepted: dict[str, int] = field(default_factory=dict)
    # Rows after the newest signed checkpoint checked (audit.checkpoints); None without one.
    after_checkpoint: int | None = None

    @property
    def intact(self) -> bool:
        """No tampering found, and no row left unchecked that the operator did not accept."""
        return not self.problems and not self.unverifiable

    @property
    def first_problem(self) -> Problem | None:
        return self.problems[0] if self.problems else None

    @property
    def anchor(self) -> Anchor | None:
        """The newest row checked, for the next check to start from; None for an empty log."""
        return None if self.last_id is None else Anchor(self.last_id, self.last_mac)


def accepted_up_to(accepted: Iterable[str]) -> dict[str, int | None]:
    """``KID`` or ``KID:LAST_ID`` entries as key id → the last row id accepted (None: any).
    Raises ValueError for an entry whose LAST_ID is no row id."""
    up_to: dict[str, int | None] = {}
    for entry in accepted:
        kid, _, last = entry.partition(":")
        if last and not (last.isascii() and last.isdigit()):
            raise ValueError(f"{entry!r} is not KID or KID:LAST_ID")
        up_to[kid] = int(last) if last else None
    return up_to


def verify(
    rows: Iterable[ChainedRow],
    accepted: Iterable[str] = (),
    *,
    head: str = "",
    anchor: Anchor | None = None,
    resume: bool = False,
) -> Report:
    """Check every row's MAC and link, in id order. Finds every problem, first one first.

    ``head``: the chain head's MAC, read before the rows: some row must have it, or rows were cut
    off the end (and the head not moved back with them). ``anchor``: where an earlier check
    ended: its row must still be there, as it was. ``resume``: ``rows`` start at the anchor's
    row, whose link to the row before it that check verified; any other first row must link to
    the anchor.

    A row under a key id the ring (retired keys included) lacks is ``unverifiable``, which fails
    the check, unless the id is in ``accepted``: key ids the operator named after checking why
    the key is gone, each as ``KID`` or ``KID:LAST_ID``, which accepts only the rows up to that
    id, so that rows appended under the dropped key's id since are not taken for its own. Only
    the ring and the operator say which ids may sign. A table (KeyRecord)
    or a later row (``key_rotated``) cannot: whoever can write the database could add either,
    and rewrite the whole log under a key id of their own. The links are checked either way.
    """
    if resume and anchor is None:
        raise ValueError("a resumed check needs the anchor it resumes from")
    resumed_at = anchor if resume else None
    ring = get_keyring()
    up_to = accepted_up_to(accepted)
    report = Report(accepted=dict.fromkeys(up_to, 0))
    previous = resumed_at.mac if resumed_at is not None else ""
    head_found = anchor_found = False
    previous_id: int | None = None  # the row checked before this one: where to look for a gap
    for row in rows:
        report.checked += 1
        if report.first_id is None:
            report.first_id = row.id
            if resumed_at is not None and row.id == resumed_at.row_id:
                previous = row.prev_mac
        report.last_id, report.last_mac = row.id, row.mac
        head_found = head_found or row.mac == head
        if anchor is not None and row.id == anchor.row_id:
            anchor_found = True
            if row.mac != anchor.mac:
                report.problems.append(
                    Problem(row.id, "is not the row the last check ended at: rewritten from here")
                )
        kid, _, digest = row.mac.partition(":")
        key = ring.key_for_audit(kid) if digest else None
        if not digest:
            report.problems.append(Problem(row.id, "has no MAC: written outside the audit log"))
        elif key is not None and not hmac.compare_digest(compute_mac(row, key), row.mac):
            report.problems.append(
                Problem(row.id, "its MAC does not match its content: edited or forged")
            )
        elif row.prev_mac != previous:
            # The row is as written, so the one it followed is gone, moved or replaced. Ids say
            # where, not how many: PostgreSQL's sequence skips the ids of rolled-back inserts.
            before = f"row {previous_id}" if previous_id is not None else "the start of the log"
            report.problems.append(
                Problem(
                    row.id,
                    f"does not follow the row before it ({before}): a row after {before} was "
                    "deleted, or this one inserted",
                )
            )
        if digest and key is None:
            last = up_to.get(kid, 0)
            taken = kid in up_to and (last is None or row.id <= last)
            unchecked = report.accepted if taken else report.unverifiable
            unchecked[kid] = unchecked.get(kid, 0) + 1
        previous, previous_id = row.mac, row.id
    # Nothing from the anchor on: the anchor's problem below says it.
    if head and not head_found and not (resumed_at is not None and report.last_id is None):
        # Named by the newest row left: the head links past it.
        report.problems.append(
            Problem(
                report.last_id,
                "is the newest row, but the chain's head links to a later one: "
                "rows were cut off the end",
            )
            if report.last_id is not None
            else Problem(0, "no row is left, but the chain's head links to one: all were cut off")
        )
    if anchor is not None and not anchor_found:
        report.problems.append(
            Problem(anchor.row_id, "is gone, and the last check ended at it: rows were cut off")
        )
    report.problems.sort(key=lambda problem: problem.row_id)
    return report
