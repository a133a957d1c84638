"""Users added and passwords changed outside the admin, in the audit log (PCI DSS 10.2.1.5).

Django's own ``createsuperuser`` and ``changepassword``, the shell and any script save users
through the model, so two of Django's hooks see them all: ``post_save`` on the user model for a
user added, and the password validators' ``password_changed(password, user)``, which
``User.save()`` calls after ``set_password()`` (:class:`PasswordChangeRecorded`, in
AUTH_PASSWORD_VALIDATORS). Each is a ``staff_change`` row shaped like an admin LogEntry's, by the
OS user running the process: ``added`` (Django's manager stores a new user's first password with
it, not through ``set_password()``), or ``password_changed``. No row holds a password.

In a request the admin records these itself, with the staff member and the address: its LogEntry
(staff/auditing.py) and its own-password view (staff/admin_site.py). So these hooks write nothing
while a request is being served, or each change there would be two rows.

Each row is written right after the save, in the caller's transaction when there is one (the
admin's, or ``transaction.atomic()`` in the shell): then the row cannot be lost without the change.
Django's commands save in autocommit: the user is committed, then the row; should the row fail,
the command ends on that error with the change kept. Nor do Django's commands tell of a run they
refuse (a username that names no user, passwords that never matched): no hook sees those.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models.signals import post_save
from django.dispatch import receiver

from audit.models import AuditEvent
from audit.system import record_command
from staff.auditing import NAMED_MODELS, served


def record_user_change(action: str, user: AbstractBaseUser) -> None:
    """A change to a user made outside a request, as a ``staff_change`` row shaped like an
    admin LogEntry's, by the OS user running the process."""
    if served() is not None:
        return  # the admin's own row records it, with who and where from
    model = get_user_model()._meta.label
    detail: dict[str, Any] = {"action": action, "model": model, "object_id": str(user.pk)}
    if model in NAMED_MODELS:
        detail["object"] = str(user)[:200]  # as a LogEntry's object_repr
    record_command(AuditEvent.Event.STAFF_CHANGE, AuditEvent.Outcome.SUCCESS, **detail)


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="staff.user_added")
def user_added(sender: Any, instance: AbstractBaseUser, created: bool, **kwargs: Any) -> None:
    if created:
        record_user_change("added", instance)


class PasswordChangeRecorded:
    """Not a rule on passwords: Django tells each validator when a password has been changed,
    and this one records it. Listed in AUTH_PASSWORD_VALIDATORS."""

    def validate(self, password: str, user: AbstractBaseUser | None = None) -> None:
        return None

    def password_changed(self, password: str, user: AbstractBaseUser | None = None) -> None:
        if user is not None and user.pk is not None:
            record_user_change("password_changed", user)

    def get_help_text(self) -> str:
        return "Each password change is recorded in the audit log; the password never is."
