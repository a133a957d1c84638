from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from keys.keyring import KeyringError, new_key_entry


class Command(BaseCommand):
    help = "Print a new keyring entry 'kid:64-hex-chars' from the OS's random source."
    requires_system_checks: list[str] = []  # it makes the key a broken keyring lacks

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--id", dest="kid", help="key id (default: k<date><random>)")

    def handle(self, *args: Any, kid: str | None = None, **options: Any) -> None:
        try:
            self.stdout.write(new_key_entry(kid))
        except KeyringError as exc:
            raise CommandError(str(exc)) from None
