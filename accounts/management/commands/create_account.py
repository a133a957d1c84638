import getpass
from typing import Any

from django.core.management.base import CommandError, CommandParser

from accounts import provisioning
from accounts.models import Account
from keys.commands import DatabaseCommand


def ask_four_digits(label: str, what: str) -> str:
    """Prompt twice without echo; the value never reaches the terminal, argv or shell history."""
    value = getpass.getpass(f"{label} (4 digits, not shown): ")
    try:
        provisioning.four_digits(value, what)
    except provisioning.Invalid as exc:
        raise CommandError(sentence(exc)) from None
    if getpass.getpass(f"{label} again: ") != value:
        raise CommandError(f"The two entries of {what} differ.")
    return value


def sentence(exc: Exception) -> str:
    text = str(exc)
    return f"{text[:1].upper()}{text[1:]}."


class Command(DatabaseCommand):
    help = (
        "Create an account; asks for the card's last 4 digits and the PIN without echo. "
        "Many at once: import_accounts."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("number", help="account number, e.g. AC87654321")
        parser.add_argument("--balance", default="0.00", help="balance, e.g. 12.55 (default 0.00)")
        parser.add_argument(
            "--caller",
            action="append",
            default=[],
            metavar="NUMBER",
            help="only resolve for calls from this number, with its country code, e.g. "
            "'+1 555 123 4567' (repeatable)",
        )

    def handle(
        self, *args: Any, number: str, balance: str, caller: list[str], **options: Any
    ) -> None:
        # Everything but the credentials is checked before they are asked for.
        try:
            number = provisioning.account_number(number)
            amount = provisioning.balance(balance)
            callers = provisioning.caller_numbers(caller)
        except provisioning.Invalid as exc:
            raise CommandError(sentence(exc)) from None
        if Account.objects.filter(number=number).exists():
            raise CommandError(f"Account {number} already exists.")
        card, pin = (
            ask_four_digits("Card last 4", "the card's last 4"),
            ask_four_digits("PIN", "the PIN"),
        )
        try:
            provisioning.create_account(number, amount, callers, card, pin)
        except provisioning.AccountExists as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(f"Created account {number}."))
