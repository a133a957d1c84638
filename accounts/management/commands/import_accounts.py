import io
import sys
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, TextIO

from django.core.management.base import CommandError, CommandParser

from accounts.provisioning import COLUMNS, ImportRefused, import_accounts
from keys.commands import DatabaseCommand

# Enough to see what kind of mistake a file holds, not a screenful per row of a broken export.
SHOWN = 20


class Command(DatabaseCommand):
    help = (
        "Load accounts from a CSV file (or - for standard input) with the columns "
        f"{','.join(COLUMNS)}: caller_numbers may be empty, several separated by ';'. Card and "
        "PIN are sealed as each row is read; all rows are imported, or none."
    )

    # call_command("import_accounts", "-", stdin=...) reads that instead of the process's.
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="the CSV file, or - to read standard input")
        parser.add_argument("--dry-run", action="store_true", help="check every row, write nothing")

    def handle(self, *args: Any, file: str, dry_run: bool, **options: Any) -> None:
        started = time.monotonic()
        source = "stdin" if file == "-" else Path(file).name
        try:
            # utf-8-sig: a spreadsheet's export starts with a byte-order mark.
            with self.open(file, options.get("stdin")) as stream:
                result = import_accounts(stream, source=source, dry_run=dry_run)
        except ImportRefused as refused:
            for problem in refused.problems[:SHOWN]:
                self.stderr.write(str(problem))
            if len(refused.problems) > SHOWN:
                self.stderr.write(f"... and {len(refused.problems) - SHOWN} more")
            raise CommandError(
                f"No account imported: {len(refused.problems)} problem(s) in {source}."
            ) from None
        except UnicodeDecodeError:
            raise CommandError(f"{source} is not UTF-8 text: save the CSV as UTF-8.") from None
        seconds = time.monotonic() - started
        if result.dry_run:
            self.stdout.write(
                f"Dry run: {result.accounts} accounts ({result.with_callers} with caller "
                f"numbers) would be imported from {source}; nothing was written."
            )
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Imported {result.accounts} accounts ({result.with_callers} with caller "
                    f"numbers) from {source} in {seconds:.1f}s."
                )
            )

    def open(self, file: str, stdin: TextIO | None) -> AbstractContextManager[TextIO]:
        if file == "-":
            # Left open: standard input is the process's, not this command's.
            if stdin is None:
                stdin = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig", newline="")
            return nullcontext(stdin)
        try:
            return open(file, encoding="utf-8-sig", newline="")
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}.") from None
