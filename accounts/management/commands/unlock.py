from typing import Any

from django.core.management.base import CommandError, CommandParser

from accounts import lockout
from audit.system import command_actor
from keys.commands import DatabaseCommand


class Command(DatabaseCommand):
    help = "Lift the lockout of a caller number (+15551234567) or an account number; audited."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("target", help="caller number (E.164) or account number")
        parser.add_argument("--by", default="system", help="who lifts it, for the audit log")

    def handle(self, *args: Any, target: str, by: str, **options: Any) -> None:
        # --by is the operator's word; the OS user who ran the command is kept beside it.
        rows = lockout.lift(target, by=by, os_user=command_actor())
        if not rows:
            raise CommandError(f"No lock or failed attempt is recorded for {target}.")
        for row in rows:
            self.stdout.write(self.style.SUCCESS(f"Lifted: {row.scope} {target}"))
