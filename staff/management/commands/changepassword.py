"""Django's changepassword, audited: securegather/user_commands.py."""

from __future__ import annotations

import getpass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.management.commands import changepassword

from audit.models import AuditEvent
from staff.auditing import record_user_command
from staff.user_commands import AuditedUserCommand


class Command(AuditedUserCommand, changepassword.Command):
    help = "Change a user's password; audited, as the OS user running it."
    change_action = "password_changed"

    def record_failure(self, options: dict[str, Any]) -> None:
        # The passwords typed are never at hand here; the username is kept only when it names
        # a user, and the reason says which of Django's refusals it was.
        user = self._target(options)
        reason = "unknown_user" if user is None else "not_changed"
        record_user_command(self.change_action, AuditEvent.Outcome.FAILURE, user, reason=reason)

    def _target(self, options: dict[str, Any]) -> AbstractBaseUser | None:
        """The user Django's handle looked for: the one named, or the OS user's namesake."""
        username = options["username"] or getpass.getuser()  # as Django's: it did not fail there
        model = get_user_model()
        users = model._default_manager.using(options["database"])
        return users.filter(**{model.USERNAME_FIELD: username}).first()
