from typing import Any

from django.core.management.base import CommandError, CommandParser

from accounts import lockout
from audit.phones import e164
from audit.system import command_actor
from keys.commands import DatabaseCommand


class Command(DatabaseCommand):
    help = (
        "Lift the lockout of a caller number (any common spelling with its country code, e.g. "
        "'+1 555 123 4567') or an account number; audited."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("target", help="caller number (+1 555 …) or account number")
        parser.add_argument("--by", default="system", help="who lifts it, for the audit log")

    def handle(self, *args: Any, target: str, by: str, **options: Any) -> None:
        # Locks are kept under E.164 ("+15551234567"): what ops paste from a ticket or a phone
        # ("+1 (555) 123-4567", "0044 20 …") is read as the same number. Anything else is an
        # account number, as typed.
        target = e164(target) or target.strip()
        # --by is the operator's word; the OS user who ran the command is kept beside it.
        rows = lockout.lift(target, by=by, os_user=command_actor())
        if not rows:
            raise CommandError(
                f"No lock or failed attempt is recorded for {target}: give a caller number with "
                "its country code (+1 555 123 4567) or an account number (AC12345678)."
            )
        for row in rows:
            self.stdout.write(self.style.SUCCESS(f"Lifted: {row.scope} {target}"))
