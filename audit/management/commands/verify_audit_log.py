import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from audit import checkpoints
from audit.chain import Anchor, accepted_up_to
from audit.checkpoints import Checkpoint, CheckpointError
from audit.verification import verify_log
from keys.commands import DatabaseCommand
from keys.keyring import KeyringError, get_keyring
from keys.models import KeyRecord


def accepted_entry(value: str) -> str:
    """An --accept-dropped-key value, refused by the parser unless it is KID or KID:LAST_ID."""
    try:
        accepted_up_to([value])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


class Command(DatabaseCommand):
    help = (
        "Check the audit log's HMAC chain. Exits 0 when every row is intact, 1 naming the first "
        "row that was edited, deleted around or inserted out of band, or the key ids the ring "
        "lacks that rows were signed under."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--accept-dropped-key",
            action="append",
            default=[],
            type=accepted_entry,
            metavar="KID[:LAST_ID]",
            help=(
                "Accept, unchecked, the rows signed under this key id, which the ring lacks "
                "(repeatable); with LAST_ID, only those up to that row, so that rows appended "
                "under the id since are not accepted (give it in a scheduled check). Only once "
                "you know why that key is gone: putting it back in the ring as retired checks "
                "them instead."
            ),
        )
        parser.add_argument(
            "--anchor-file",
            type=Path,
            help=(
                "Where the last check ended, kept off the database host: checked against, then "
                "moved to this check's newest row when the log is intact. Shows rows cut off the "
                "log's end, which the chain alone cannot."
            ),
        )
        parser.add_argument(
            "--from-anchor",
            action="store_true",
            help=(
                "Check only the rows from the anchor on (the last check verified those before "
                "it): as long as the rows written since. Run without it now and then (weekly) to "
                "check every row again."
            ),
        )

        parser.add_argument(
            "--checkpoints",
            nargs="+",
            type=Path,
            metavar="FILE",
            help=(
                "Files of signed checkpoints the app hosts wrote off the database host "
                "(SECUREGATHER_CHECKPOINT_FILE, or the syslog server's file): every one is "
                "checked, and the rows up to each must all be there, unchanged. Needs "
                "--checkpoint-public-key."
            ),
        )
        parser.add_argument(
            "--checkpoint-public-key",
            type=Path,
            metavar="FILE",
            help="The public key PEM that generate_checkpoint_key wrote beside the private one.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path | None = options["anchor_file"]
        if bool(options["checkpoints"]) != bool(options["checkpoint_public_key"]):
            raise CommandError(
                "--checkpoints and --checkpoint-public-key go together: the files, and the key "
                "that verifies them."
            )
        if options["from_anchor"] and path is None:
            raise CommandError("--from-anchor needs --anchor-file: where the last check ended.")
        if path is not None and not path.parent.is_dir():
            raise CommandError(f"{path.parent} is not a directory: no anchor can be kept there.")
        require_usable_keyring()
        anchor = read_anchor(path) if path is not None else None
        signed = (
            read_checkpoints(options["checkpoints"], options["checkpoint_public_key"])
            if options["checkpoints"]
            else []
        )
        report = verify_log(
            anchor=anchor,
            from_anchor=options["from_anchor"],
            accepted=options["accept_dropped_key"],
            checkpoints=signed,
        )
        for kid, count in sorted(report.accepted.items()):
            self.stderr.write(
                f"{count} row(s) signed under key {kid!r} were not checked: accepted with "
                "--accept-dropped-key."
            )
        if report.problems:
            for problem in report.problems[1:]:
                self.stderr.write(f"also {problem}")
            for line in unverifiable_lines(report.unverifiable):
                self.stderr.write(f"also {line}")
            raise CommandError(
                f"Audit log chain broken at {report.first_problem} "
                f"({len(report.problems)} problem(s) in {report.checked} rows)."
            )
        if report.unverifiable:
            first, *others = unverifiable_lines(report.unverifiable)
            for line in others:
                self.stderr.write(line)
            raise CommandError(f"Audit log not verified: {first}")
        resumed = f", from row {report.first_id}" if options["from_anchor"] and anchor else ""
        self.stdout.write(
            self.style.SUCCESS(f"Audit log intact: {report.checked} rows checked{resumed}.")
        )
        if signed:
            checkpoint = signed[-1]
            self.stdout.write(
                f"Every row up to each of {len(signed)} checkpoint(s) is there, unchanged, up to "
                f"the newest at row {checkpoint.last_id} ({checkpoint.count} rows, signed "
                f"{checkpoint.time} on {checkpoint.host}); {report.after_checkpoint} row(s) came "
                "after it."
            )
        if path is not None and report.anchor is not None:
            if anchor is None:
                # On stderr, where a cron job's mail or a timer's journal shows it: an anchor
                # lost is a check that cannot see rows cut off before this run.
                self.stderr.write(f"No anchor at {path} yet: this check starts one.")
            write_anchor(path, report.anchor)
            self.stdout.write(f"Anchor moved to row {report.anchor.row_id} ({path}).")


def unverifiable_lines(unverifiable: dict[str, int]) -> list[str]:
    """What to do about each key id the ring lacks."""
    return [
        f"{count} row(s) are signed under key id {kid!r}, which the keyring lacks, so they "
        "cannot be checked: a key dropped from the ring, or rows rewritten under a key of "
        "someone else's. Put the key back in SECUREGATHER_KEYS as retired "
        f"('{kid}:<hex>:retired'); or, once you have checked why it is gone, accept its rows "
        f"with --accept-dropped-key {kid}."
        for kid, count in sorted(unverifiable.items())
    ]


def require_usable_keyring() -> None:
    """A ring that cannot check the rows stops the run before it reports them all broken."""
    try:
        ring = get_keyring()
    except KeyringError as exc:
        raise CommandError(f"The keyring is unusable: {exc}. See `manage.py check`.") from None
    if changed := KeyRecord.changed(ring.every_key):
        raise CommandError(
            f"Key id {changed[0]!r} holds other bytes than when it was first used "
            "(securegather.E007): every row it signed would look tampered with. Put the original "
            "bytes back under that id, then check again; `manage.py keyring_status` lists the ids."
        )


def read_checkpoints(paths: list[Path], public_key: Path) -> list[Checkpoint]:
    """Every checkpoint in ``paths``, in order of their rows, each verified with the key in
    ``public_key``."""
    try:
        return checkpoints.load(paths, checkpoints.public_key(public_key))
    except CheckpointError as exc:
        raise CommandError(f"Checkpoints not usable: {exc}.") from None


def read_anchor(path: Path) -> Anchor | None:
    """The anchor in ``path``; None when there is no file yet (the first check)."""
    try:
        return Anchor.parse(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CommandError(
            f"{path} holds no anchor this command wrote ({type(exc).__name__}). Find out what "
            "changed it; to start again from this check, move it aside."
        ) from None


def write_anchor(path: Path, anchor: Anchor) -> None:
    """Replace the anchor whole and durably: a run stopped halfway, two at once, or a crash
    leave one anchor or the other, never half of one."""
    try:
        fd, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "w") as file:
                file.write(f"{anchor}\n")
                file.flush()
                os.fsync(file.fileno())
            os.replace(partial, path)
        except BaseException:
            os.unlink(partial)
            raise
        # The rename lasts a crash only once the directory's entry is on disk too.
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except OSError as exc:
        raise CommandError(
            f"The log is intact, but the anchor could not be written to {path}: {exc.strerror}."
        ) from None
