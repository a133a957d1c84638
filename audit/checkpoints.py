"""Signed checkpoints of the audit log, kept off the database host.

A checkpoint names the newest row (its id and MAC) and how many rows there are up to it, signed
with an Ed25519 key that never enters the database, and is written to sinks outside it: an
append-only JSON-lines file and syslog. The chain shows a row edited or deleted in the middle;
rows cut off its end, or the whole log wiped with its head, it cannot. A checkpoint shipped off
the host can: the row it names must still be there, with its MAC, and as many rows before it.

The app hosts write one every ``SECUREGATHER_CHECKPOINT_ROWS`` rows or
``SECUREGATHER_CHECKPOINT_SECONDS`` seconds of appends (``after_append``), and
``manage.py checkpoint_audit_log`` writes one when a timer runs it.
"""

from __future__ import annotations

import base64
import json
import logging
import logging.handlers
import os
import socket
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache, partial
from itertools import pairwise
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.chain import Problem

PURPOSE = b"securegather.audit.checkpoint|"
log = logging.getLogger(__name__)
_decoder = json.JSONDecoder()


class CheckpointError(Exception):
    """A checkpoint that cannot be written, or read and verified; the message says the fix."""


@dataclass(frozen=True)
class Checkpoint:
    """The newest row's id and MAC, and the count of rows up to it, when and where it was seen."""

    last_id: int
    count: int
    mac: str
    time: str
    host: str

    def payload(self) -> bytes:
        return PURPOSE + json.dumps(asdict(self), sort_keys=True, separators=(",", ":")).encode()

    def signed_line(self, key: Ed25519PrivateKey) -> str:
        signature = base64.b64encode(key.sign(self.payload())).decode()
        return json.dumps({**asdict(self), "sig": signature}, sort_keys=True)

    @classmethod
    def from_line(cls, line: str, key: Ed25519PublicKey) -> Checkpoint | None:
        """The checkpoint in ``line`` (a syslog prefix allowed); None for a line that holds none.
        Raises CheckpointError for one whose signature ``key`` does not verify."""
        start = line.find("{")
        try:
            # raw_decode: syslog puts a prefix before the JSON and may add a NUL after it.
            fields: dict[str, Any] = _decoder.raw_decode(line, start)[0] if start >= 0 else {}
            signature = base64.b64decode(fields.pop("sig"), validate=True)
            checkpoint = cls(
                last_id=int(fields["last_id"]),
                count=int(fields["count"]),
                mac=str(fields["mac"]),
                time=str(fields["time"]),
                host=str(fields["host"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
        try:
            key.verify(signature, checkpoint.payload())
        except InvalidSignature:
            raise CheckpointError(
                f"the checkpoint at row {checkpoint.last_id} ({checkpoint.time}, "
                f"{checkpoint.host}) is not signed by this public key: give the public key of "
                "the app hosts' SECUREGATHER_CHECKPOINT_KEY_FILE, or treat the file as forged"
            ) from None
        return checkpoint


# --- Writing, on the app hosts.


@lru_cache(maxsize=4)
def private_key(path: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise CheckpointError(
            f"SECUREGATHER_CHECKPOINT_KEY_FILE {path} holds no readable private key ({exc}): "
            "make one with `manage.py generate_checkpoint_key`, readable by the service user"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointError(
            f"SECUREGATHER_CHECKPOINT_KEY_FILE {path} is not an Ed25519 key: make one with "
            "`manage.py generate_checkpoint_key`"
        )
    return key


class _SysLogHandler(logging.handlers.SysLogHandler):
    """A SysLogHandler whose send fails loudly: the stock one hands its error to handleError,
    which prints it and returns, so a checkpoint never sent would be reported written."""

    def handleError(self, record: logging.LogRecord) -> None:
        # Called from emit's ``except``: the error it caught is the one being handled.
        raise OSError(f"syslog {self.address!r}: {sys.exc_info()[1]}") from sys.exc_info()[1]


@lru_cache(maxsize=4)
def _syslog(address: str) -> logging.handlers.SysLogHandler:
    if address.startswith("udp://"):
        host, _, port = address.removeprefix("udp://").rpartition(":")
        handler = _SysLogHandler(address=(host, int(port)))
    else:
        handler = _SysLogHandler(address=address)
    handler.ident = "securegather-checkpoint: "
    return handler


def _append_line(path: str, line: str) -> None:
    # One write() on an O_APPEND file: lines from several workers never interleave; fsync so
    # that a checkpoint reported written survives a crash of the host.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, f"{line}\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def enabled() -> bool:
    return bool(settings.SECUREGATHER_CHECKPOINT_KEY_FILE) and bool(
        settings.SECUREGATHER_CHECKPOINT_FILE or settings.SECUREGATHER_CHECKPOINT_SYSLOG
    )


def write(last_id: int, mac: str) -> Checkpoint:
    """Sign a checkpoint at row ``last_id`` (whose MAC is ``mac``) and write it to every sink."""
    from audit.models import AuditEvent

    if not enabled():
        raise CheckpointError(
            "checkpoints are off: set SECUREGATHER_CHECKPOINT_KEY_FILE, and "
            "SECUREGATHER_CHECKPOINT_FILE or SECUREGATHER_CHECKPOINT_SYSLOG"
        )
    key = private_key(settings.SECUREGATHER_CHECKPOINT_KEY_FILE)
    checkpoint = Checkpoint(
        last_id=last_id,
        count=AuditEvent.objects.filter(id__lte=last_id).count(),
        mac=mac,
        time=timezone.now().isoformat(timespec="seconds"),
        host=socket.gethostname(),
    )
    line = checkpoint.signed_line(key)
    try:
        if settings.SECUREGATHER_CHECKPOINT_FILE:
            _append_line(settings.SECUREGATHER_CHECKPOINT_FILE, line)
        if settings.SECUREGATHER_CHECKPOINT_SYSLOG:
            _syslog(settings.SECUREGATHER_CHECKPOINT_SYSLOG).emit(
                logging.makeLogRecord({"msg": line, "levelno": logging.INFO})
            )
    except OSError as exc:
        raise CheckpointError(f"the checkpoint could not be written: {exc}") from None
    schedule.written(last_id)
    return checkpoint


def write_newest() -> Checkpoint | None:
    """A checkpoint at the newest row; None when the log is empty, or when the newest row is the
    one this process last signed or, in a new process (a timer's run), the one the newest
    checkpoint in the file sink names. With syslog as the only sink there is nothing to read
    back: every run signs the newest row, new or not."""
    from audit.models import AuditEvent

    newest = AuditEvent.objects.order_by("-id").values_list("id", "mac").first()
    if newest is None or newest[0] == (schedule.last_id or _last_in_file()):
        return None
    return write(*newest)


def _last_in_file() -> int | None:
    """The row of the newest checkpoint in the file sink, if any: a timer's run writes none when
    no row came since. The file's tail is enough: its lines are short and in order."""
    path = settings.SECUREGATHER_CHECKPOINT_FILE
    if not (path and settings.SECUREGATHER_CHECKPOINT_KEY_FILE):
        return None
    key = private_key(settings.SECUREGATHER_CHECKPOINT_KEY_FILE).public_key()
    try:
        with open(path, "rb") as file:
            file.seek(max(0, os.fstat(file.fileno()).st_size - 8192))
            tail = file.read().decode(errors="replace").splitlines()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CheckpointError(f"{path} cannot be read: {exc.strerror}") from None
    ids = [c.last_id for line in tail if (c := Checkpoint.from_line(line, key)) is not None]
    return max(ids, default=None)


class Schedule:
    """When this process wrote its last checkpoint, and at which row."""

    def __init__(self) -> None:
        self.last_id: int | None = None
        self.at = 0.0

    def due(self, last_id: int) -> bool:
        now = time.time()
        if self.last_id is None:
            # A process's first append starts its count: rows before it are the timer's.
            self.last_id, self.at = last_id - 1, now
        if last_id <= self.last_id:
            return False
        return (
            last_id - self.last_id >= settings.SECUREGATHER_CHECKPOINT_ROWS
            or now - self.at >= settings.SECUREGATHER_CHECKPOINT_SECONDS
        )

    def written(self, last_id: int) -> None:
        self.last_id, self.at = max(last_id, self.last_id or 0), time.time()


schedule = Schedule()


def after_append(last_id: int, head_mac: str) -> None:
    """Call after appending rows, inside the append's transaction: when a checkpoint is due,
    write one once the rows commit. When none is due, it costs a comparison: no query."""
    if enabled() and schedule.due(last_id):
        transaction.on_commit(partial(_write_if_due, last_id, head_mac))


def _write_if_due(last_id: int, mac: str) -> None:
    # Several appends in one transaction each ask; the first one committed writes.
    if not schedule.due(last_id):
        return
    try:
        write(last_id, mac)
    except CheckpointError:
        # A call must not fail because a sink is down; the timer's command will say so too.
        log.exception("Audit checkpoint at row %s not written", last_id)


# --- Verifying, anywhere the public key is.


def public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise CheckpointError(
            f"{path} holds no readable public key ({exc}): give the .pub file "
            "`manage.py generate_checkpoint_key` wrote"
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise CheckpointError(f"{path} is not an Ed25519 public key")
    return key


def load(paths: Iterable[Path], key: Ed25519PublicKey) -> list[Checkpoint]:
    """Every checkpoint in the files, each verified with ``key``, in order of their rows."""
    found: list[Checkpoint] = []
    seen: set[str] = set()
    for path in paths:
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError as exc:
            raise CheckpointError(
                f"checkpoint file {path} cannot be read ({exc.strerror}): copy it from the sink "
                "the app hosts write (SECUREGATHER_CHECKPOINT_FILE, or the syslog server's file)"
            ) from None
        for line in lines:
            # The same line from the file and from syslog (after its prefix) is verified once.
            signed = line[line.find("{") :].rstrip("\x00 ")
            if signed not in seen and (checkpoint := Checkpoint.from_line(line, key)):
                seen.add(signed)
                found.append(checkpoint)
    if not found:
        raise CheckpointError(
            "no checkpoint in the files given: give the file the app hosts write, after "
            "`manage.py checkpoint_audit_log` has written one"
        )
    return sorted(found, key=lambda c: (c.last_id, c.time, c.host))


def _signed(checkpoint: Checkpoint) -> str:
    return f"the checkpoint signed at {checkpoint.time} on {checkpoint.host}"


def _disagreements(ordered: Sequence[Checkpoint]) -> dict[int, list[str]]:
    """What the checkpoints (in order of their rows) say against each other, by row. Rows are
    only ever appended, with ids that grow: a checkpoint counts at least one row more than one
    at an earlier row (its own), and no more than the ids between them."""
    found: dict[int, list[str]] = {}
    for before, after in pairwise(ordered):
        signed, earlier = _signed(after), _signed(before)
        if after.last_id == before.last_id:
            if (after.mac, after.count) != (before.mac, before.count):
                found.setdefault(after.last_id, []).append(
                    f"{signed} and {earlier} disagree on it ({after.count} rows, "
                    f"{before.count} rows): rewritten between them"
                )
            continue
        added = after.count - before.count
        if added < 1:
            found.setdefault(after.last_id, []).append(
                f"{signed} counted {after.count} rows up to it, no more than {earlier} counted "
                f"up to row {before.last_id} ({before.count}): rows were cut between them and "
                "the count signed afresh"
            )
        elif added > after.last_id - before.last_id:
            found.setdefault(after.last_id, []).append(
                f"{signed} counted {added} rows after row {before.last_id}, more than the ids "
                f"between them: the checkpoints do not fit one log"
            )
    return found


def check(checkpoints: Sequence[Checkpoint], chunk_size: int = 5000) -> tuple[list[Problem], int]:
    """What the stored log lacks of ``checkpoints`` (every one: the first that fails, with why,
    and how many more fail), and how many rows came after the newest.

    One pass over the rows' ids and MACs up to the newest checkpoint, counting as it goes: as
    many queries for a year of checkpoints as for one."""
    from audit.models import AuditEvent

    ordered = sorted(set(checkpoints), key=lambda c: (c.last_id, c.time, c.host))
    if not ordered:
        return [], 0
    found = _disagreements(ordered)

    def held(checkpoint: Checkpoint, mac: str | None, count: int) -> None:
        if mac is None:
            why = f"is gone, and {_signed(checkpoint)} holds it: rows were cut off"
        elif mac != checkpoint.mac:
            why = f"is not the row {_signed(checkpoint)} holds: rewritten from here"
        elif count != checkpoint.count:
            # With its row there, a count that differs shows rows taken out (or put in) before
            # it, their links mended by whoever also holds the chain's key.
            why = (
                f"{count} rows up to it, but {_signed(checkpoint)} counted {checkpoint.count}: "
                "rows were deleted or inserted before it"
            )
        else:
            return
        found.setdefault(checkpoint.last_id, []).insert(0, why)

    rows = (
        AuditEvent.objects.filter(id__lte=ordered[-1].last_id)
        .order_by("id")
        .values_list("id", "mac")
        .iterator(chunk_size=chunk_size)
    )
    count, at = 0, 0
    for row_id, mac in rows:
        while at < len(ordered) and ordered[at].last_id < row_id:
            held(ordered[at], None, count)
            at += 1
        count += 1
        while at < len(ordered) and ordered[at].last_id == row_id:
            held(ordered[at], mac, count)
            at += 1
    for checkpoint in ordered[at:]:
        held(checkpoint, None, count)

    problems: list[Problem] = []
    if found:
        first, *others = sorted(found)
        problems = [Problem(first, why) for why in dict.fromkeys(found[first])]
        if others:
            problems.append(
                Problem(
                    others[0],
                    f"{found[others[0]][0]}; and {len(others) - 1} more checkpoint(s) after it "
                    f"fail too, up to row {others[-1]}"
                    if len(others) > 1
                    else found[others[0]][0],
                )
            )
    after = AuditEvent.objects.filter(id__gt=ordered[-1].last_id).count()
    return problems, after
