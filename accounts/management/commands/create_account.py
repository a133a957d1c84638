import getpass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser
from django.db import transaction

from accounts.models import Account, is_four_digits
from audit.models import AuditEvent
from audit.system import record_command
from keys.commands import DatabaseCommand


def ask_four_digits(label: str) -> str:
    """Prompt twice without echo; the value never reaches the terminal, argv or shell history."""
    value = getpass.getpass(f"{label} (4 digits, not shown): ")
    if not is_four_digits(value):
        raise CommandError(f"The {label.lower()} must be exactly 4 digits 0-9.")
    if getpass.getpass(f"{label} again: ") != value:
        raise CommandError(f"The two {label.lower()} entries differ.")
    return value


def record_account_command(account: Account, action: str, fields: list[str]) -> None:
    """An account a command saved, as the admin records one (``record_changed``, its number, the
    fields and ``credentials`` when the card and PIN were set), by the OS user who ran it: card
    and PIN are credentials. Call it in the save's transaction."""
    record_command(
        AuditEvent.Event.RECORD_CHANGED,
        AuditEvent.Outcome.SUCCESS,
        account_number=account.number,
        model="accounts.Account",
        action=action,
        fields=fields,
    )


class Command(DatabaseCommand):
    help = "Create an account; asks for the card's last 4 digits and the PIN without echo."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("number", help="account number, e.g. AC87654321")
        parser.add_argument("--balance", default="0.00", help="balance, e.g. 12.55 (default 0.00)")
        parser.add_argument(
            "--caller",
            action="append",
            default=[],
            metavar="E164",
            help="only resolve for calls from this number (repeatable)",
        )

    def handle(
        self, *args: Any, number: str, balance: str, caller: list[str], **options: Any
    ) -> None:
        if Account.objects.filter(number=number).exists():
            raise CommandError(f"Account {number} already exists.")
        try:
            amount = Decimal(balance)
        except InvalidOperation:
            raise CommandError("--balance must be a number such as 12.55.") from None
        account = Account(number=number, balance=amount, caller_numbers=caller)
        # Everything but the credentials is checked before they are asked for.
        try:
            account.full_clean(exclude=["card_last4", "pin", "card_digest", "pin_digest"])
        except ValidationError as exc:
            problems = (f"{name}: {' '.join(errors)}" for name, errors in exc.message_dict.items())
            raise CommandError(" ".join(problems)) from None
        account.set_credentials(ask_four_digits("Card last 4"), ask_four_digits("PIN"))
        with transaction.atomic():
            account.save()
            fields = ["balance", "caller_numbers", "number", "credentials"]
            record_account_command(account, "added", fields)
        self.stdout.write(self.style.SUCCESS(f"Created account {number}."))
