from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from keys.hpke import KID_PATTERN, new_keypair, write_private_key


class Command(BaseCommand):
    help = (
        "Write a new X25519 private key for the user's backend to FILE (mode 0600) and print "
        "its public entry 'kid:base64' for SECUREGATHER_BACKEND_PUBLIC_KEYS."
    )
    requires_system_checks: list[str] = []  # it makes the key a backend setting lacks

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--id", dest="kid", required=True, help="key id, e.g. b2026a")
        parser.add_argument("--out", required=True, help="the private key's file (must not exist)")

    def handle(self, *args: Any, kid: str, out: str, **options: Any) -> None:
        if not KID_PATTERN.fullmatch(kid):
            raise CommandError("--id takes 1 to 32 of A-Z a-z 0-9 _ -")
        pem, public = new_keypair()
        try:
            write_private_key(Path(out), pem)
        except OSError as exc:
            raise CommandError(f"cannot write {out}: {exc.strerror}") from None
        self.stdout.write(f"{kid}:{public}")
