import os
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = (
        "Write a new Ed25519 key pair for audit checkpoints: the private key (mode 0600) for "
        "SECUREGATHER_CHECKPOINT_KEY_FILE on the app hosts, the public one for verify_audit_log."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("private_key", type=Path, help="where to write the private key PEM")
        parser.add_argument(
            "--public-key",
            type=Path,
            help="where to write the public key PEM (default: the private key's path + .pub)",
        )

    def handle(
        self, *args: Any, private_key: Path, public_key: Path | None, **options: Any
    ) -> None:
        public_key = public_key or private_key.with_name(private_key.name + ".pub")
        key = Ed25519PrivateKey.generate()
        private_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        public_pem = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        try:
            # O_EXCL: a key in use is never overwritten; 0600 from the start, never wider.
            fd = os.open(private_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as file:
                file.write(private_pem)
            with open(public_key, "xb") as file:
                file.write(public_pem)
        except OSError as exc:
            raise CommandError(
                f"{exc.filename}: {exc.strerror}. Nothing is overwritten: move an old key aside "
                "first, or choose another path."
            ) from None
        self.stdout.write(f"Private key: {private_key} (mode 0600)")
        self.stdout.write(f"Public key: {public_key}")
        self.stdout.write(
            "Copy the private key to each app host, readable by the service user alone, and set "
            "SECUREGATHER_CHECKPOINT_KEY_FILE to it. Keep the public key where verify_audit_log "
            "runs (--checkpoint-public-key)."
        )
