from typing import Any

from django.core.management.base import CommandError, CommandParser, OutputWrapper

from keys.commands import DatabaseCommand
from keys.keyring import KeyringError, get_keyring
from keys.rotation import NO_KEY, Result, columns, rederivable, rotate
from keys.signals import keys_rotated


class Progress:
    """A bar redrawn in place on a terminal; a line per tenth of the work otherwise."""

    WIDTH = 30

    def __init__(self, out: OutputWrapper) -> None:
        self.out, self.tty, self.shown = out, out.isatty(), -1

    def __call__(self, done: int, total: int) -> None:
        # ``total`` was counted at the start: rows sealed since under an old key (a host not yet
        # reloaded) are rotated too, and the count never reads "3/2".
        total = max(total, done)
        fraction = min(done / total, 1.0) if total else 1.0
        if self.tty:
            bar = "#" * round(fraction * self.WIDTH)
            self.out.write(
                f"\r[{bar:<{self.WIDTH}}] {fraction:4.0%} {done}/{total} rows", ending=""
            )
            self.out.flush()
        elif int(fraction * 10) > self.shown:
            self.shown = int(fraction * 10)
            self.out.write(f"{done}/{total} rows rotated")

    def finish(self) -> None:
        if self.tty:
            self.out.write("")


class Command(DatabaseCommand):
    help = (
        "Re-seal every sealed value and re-derive every keyed digest under the primary key, in "
        "batches of their own transactions. Safe to run while calls are served; resumable."
    )
    # Its job is to clear what the database checks report, so they must not stop it.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size", type=int, default=1000, help="rows per transaction (default 1000)"
        )
        parser.add_argument("--dry-run", action="store_true", help="count, change nothing")

    def handle(self, *args: Any, batch_size: int, dry_run: bool, **options: Any) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        try:
            ring = get_keyring()
            if dry_run:
                return self.dry_run(ring)
            progress = Progress(self.stdout)
            result = rotate(ring, batch_size=batch_size, progress=progress)
        except KeyringError as exc:
            raise CommandError(f"The keyring is unusable: {exc}.") from None
        progress.finish()
        self.summarise(result, ring.primary.kid)

    def dry_run(self, ring: Any) -> None:
        total = 0
        for column in columns():
            # A digest is derived again from its sealed source, whatever key it sits under.
            sources = rederivable(column, ring) if column.kind == "digest" else {}
            for kid, n in sorted(column.counts().items()):
                if kid in (ring.primary.kid, NO_KEY):
                    continue
                if column.kind == "digest":
                    can, why = (
                        sources.get(kid, 0),
                        "its sealed value is missing or under no active key",
                    )
                else:
                    held = "retired in the ring" if kid in ring.retired else "not in the ring"
                    can, why = (n if kid in ring.keys else 0), f"key {held}"
                if can:
                    self.stdout.write(f"{column.label}: {can} under {kid!r} would rotate")
                if n - can:
                    self.stdout.write(
                        f"{column.label}: {n - can} under {kid!r} cannot rotate ({why})"
                    )
                total += can
        self.stdout.write(f"Dry run: {total} values would move to {ring.primary.kid!r}.")

    def summarise(self, result: Result, primary: str) -> None:
        for label, n in sorted(result.rotated.items()):
            self.stdout.write(f"{label}: {n} rotated")
        rate = result.rows / result.seconds if result.seconds else 0
        self.stdout.write(
            f"Rotated {sum(result.rotated.values())} values in {result.rows} rows to "
            f"{primary!r} in {result.seconds:.1f}s ({rate:.0f} rows/s)."
        )
        if result.stuck:
            self.stdout.write(
                self.style.ERROR(
                    f"{result.stuck} rows hold values no active key opens: "
                    "see `manage.py keyring_status`."
                )
            )
        for label, per_kid in sorted(result.lacking.items()):
            counts = ", ".join(f"{n} under {kid!r}" for kid, n in sorted(per_kid.items()))
            self.stdout.write(
                self.style.ERROR(f"{label}: {counts}, a key id the ring lacks or holds retired")
            )
        if result.remaining > result.stuck:
            self.stdout.write(
                self.style.WARNING(
                    f"{result.remaining - result.stuck} rows were busy or new: run rotate_keys "
                    "again."
                )
            )
        # The audit app records it (audit.receivers): keys sit below the audit log. A run that
        # moved nothing and left nothing behind changed nothing, and is not recorded as a rotation.
        if result.rotated or result.stuck or result.lacking or result.remaining:
            keys_rotated.send(sender=self.__class__, primary=primary, result=result)
        # The lines above say what is left; the exit status tells a script or a runbook.
        if result.stuck or result.lacking:
            raise CommandError(
                "Values are left under keys the ring cannot use: put each key back in the ring "
                "(not retired) and run rotate_keys again."
            )
        if result.remaining:
            raise CommandError("Rows were busy or new: run rotate_keys again.")
