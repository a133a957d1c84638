"""Django's createsuperuser, audited: securegather/user_commands.py."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.management.commands import createsuperuser

from audit.models import AuditEvent
from staff.auditing import record_user_command
from staff.user_commands import AuditedUserCommand


class Command(AuditedUserCommand, createsuperuser.Command):
    help = "Create a superuser; audited, as the OS user running it."
    change_action = "changed"  # a second save of the new user, should a custom manager make one

    def record_failure(self, options: dict[str, Any]) -> None:
        # Every CommandError here refuses what was given (a username blank, taken or invalid, a
        # required field missing): no user exists to name, and nothing typed is kept.
        record_user_command("added", AuditEvent.Outcome.FAILURE, None, reason="invalid_input")
