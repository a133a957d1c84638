from typing import Any

from django.core.management.base import CommandError, CommandParser

from keys.commands import DatabaseCommand
from staff.totp import EnrolError, enrol_totp, terminal_qr


class Command(DatabaseCommand):
    help = (
        "Give a staff user a TOTP device (the admin's second factor) and print it as a QR code "
        "and an otpauth:// URI to add to an authenticator app. Both hold the secret: show them "
        "to that user only."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="authenticator", help="the device's name")
        parser.add_argument(
            "--replace", action="store_true", help="discard the user's existing TOTP devices"
        )

    def handle(self, *args: Any, username: str, name: str, replace: bool, **options: Any) -> None:
        try:
            device = enrol_totp(username, name=name, replace=replace)
        except EnrolError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"TOTP device {name!r} enrolled for {username}.")
        self.stdout.write("Scan the code with an authenticator app, or type in the URI below it:")
        self.stdout.write(terminal_qr(device.config_url), ending="")
        self.stdout.write(device.config_url)
        if not device.user.is_staff:
            self.stderr.write(f"Note: {username} is not staff, so cannot use the admin yet.")
