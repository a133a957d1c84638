"""Django's ``changepassword`` and ``createsuperuser``, audited (PCI DSS 10.2.1.5).

The commands are Django's own, run unchanged; this wraps their ``handle``. Each user one of them
saves becomes a ``staff_change`` row in the save's own transaction, and a run Django ends with a
``CommandError`` becomes a failure row, written after its transaction is rolled back. No row holds
a password, nor a username that names no user (someone may have typed a password there).

The transaction opens as the user's save begins, not around ``handle``: the commands prompt for
passwords, and a transaction open while someone types would hold SQLite's write lock (every
transaction there begins with ``BEGIN IMMEDIATE``), stalling every call step meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.management.base import CommandError
from django.db import DEFAULT_DB_ALIAS, IntegrityError, transaction
from django.db.models import Model
from django.db.models.signals import post_save, pre_save

from audit.models import AuditEvent
from keys.commands import DatabaseCommand
from staff.auditing import record_user_command


class AuditedUserCommand(DatabaseCommand):
    """Put before Django's command in the bases: ``class Command(AuditedUserCommand, Django's)``."""

    # The row's action for a save that changes an existing user (a new user's is "added").
    change_action: str

    def handle(self, *args: Any, **options: Any) -> str | None:
        if options["database"] != DEFAULT_DB_ALIAS:
            # The audit log is in the default database only: a change elsewhere could not share
            # a transaction with its row. Settings name no other database, so none is refused.
            raise CommandError(
                "Only the default database can be used: the audit log is kept there, and a "
                "change must be committed with its audit row."
            )
        try:
            with self._saves_audited():
                return super().handle(*args, **options)
        except CommandError:
            # Django's own refusals (unknown user, passwords that never matched, a username
            # taken): nothing was saved, and the row says who tried.
            self.record_failure(options)
            raise
        except IntegrityError:
            # A username taken between Django's check and the save: refused all the same.
            self.record_failure(options)
            raise CommandError(
                "The user was not saved: the database refused it (a username taken meanwhile?)."
            ) from None

    def record_failure(self, options: dict[str, Any]) -> None:
        raise NotImplementedError

    def _record_saved(self, user: AbstractBaseUser, created: bool) -> None:
        action = "added" if created else self.change_action
        record_user_command(action, AuditEvent.Outcome.SUCCESS, user)

    @contextmanager
    def _saves_audited(self) -> Iterator[None]:
        """Within the block, each save of a user runs in a transaction that also writes its row:
        opened as the save begins (pre_save), committed once the row is written (post_save).
        An error in between, the row's own included, rolls back the save too."""
        model = get_user_model()
        with ExitStack() as saving:

            def begin(sender: type[Model], using: str, **kwargs: Any) -> None:
                saving.enter_context(transaction.atomic(using=using))

            def saved(sender: type[Model], instance: Any, created: bool, **kwargs: Any) -> None:
                self._record_saved(instance, created)
                saving.close()  # commits the save with its row

            pre_save.connect(begin, sender=model, weak=False)
            post_save.connect(saved, sender=model, weak=False)
            try:
                yield
            finally:
                pre_save.disconnect(begin, sender=model)
                post_save.disconnect(saved, sender=model)
