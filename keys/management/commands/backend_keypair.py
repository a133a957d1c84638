from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from keys.hpke import KEMS, KID_PATTERN, X25519, new_keypair, write_private_key


class Command(BaseCommand):
    help = (
        "Write a new private key for the user's backend to FILE (mode 0600) and print its "
        "public entry 'kid:SUITE:base64' for SECUREGATHER_BACKEND_PUBLIC_KEYS. An X25519 key "
        "is PKCS#8 PEM; an MLKEM768_X25519 (X-Wing) key is its 32-byte seed in PEM armour."
    )
    requires_system_checks: list[str] = []  # it makes the key a backend setting lacks

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--id", dest="kid", required=True, help="key id, e.g. b2026a")
        parser.add_argument("--out", required=True, help="the private key's file (must not exist)")
        parser.add_argument(
            "--kem", choices=list(KEMS), default=X25519.name, help="the suite (default X25519)"
        )

    def handle(self, *args: Any, kid: str, out: str, kem: str, **options: Any) -> None:
        if not KID_PATTERN.fullmatch(kid):
            raise CommandError("--id takes 1 to 32 of A-Z a-z 0-9 _ -")
        private_file, public = new_keypair(kem)
        try:
            write_private_key(Path(out), private_file)
        except OSError as exc:
            raise CommandError(f"cannot write {out}: {exc.strerror}") from None
        self.stdout.write(f"{kid}:{public}")
