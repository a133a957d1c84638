import getpass
from typing import Any

from django.core.management.base import CommandError, CommandParser

from keys.commands import DatabaseCommand
from staff.members import StaffError, check_password, create_staff
from staff.roles import OPS_GROUP
from staff.totp import terminal_qr


class Command(DatabaseCommand):
    help = (
        "Add a staff member: the user in a group (ops by default), a password asked without "
        "echo, and a TOTP device shown as a QR code and an otpauth:// URI. Both hold the "
        "device's secret: show them to that person only."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--group", default=OPS_GROUP, help=f"the group they join (default {OPS_GROUP})"
        )
        parser.add_argument("--email", default="", help="their email address")

    def handle(self, *args: Any, username: str, group: str, email: str, **options: Any) -> None:
        password = getpass.getpass(f"Password for {username} (not shown): ")
        try:
            check_password(username, password)
            if getpass.getpass("Password again: ") != password:
                raise StaffError("The two passwords differ.")
            device = create_staff(username, password, group=group, email=email)
        except StaffError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Staff user {username} created in group {group}.")
        self.stdout.write(
            f"TOTP device {device.name!r} enrolled: scan the code with an authenticator app, "
            "or type in the URI below it."
        )
        self.stdout.write(terminal_qr(device.config_url), ending="")
        self.stdout.write(device.config_url)
