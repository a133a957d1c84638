"""Staff members made from the command line (`create_staff`): the user, their group and their
second factor, in one transaction, each step in the audit log.

The user's ``staff_change`` rows (``added``, ``password_changed``) are written by the hooks in
staff/users.py as for any user saved outside the admin; the group is recorded here, and the TOTP
device by enrol_totp. Either all of them are kept, or none.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import AuditEvent
from audit.system import record_command
from staff.roles import OPS_GROUP, ensure_ops_group
from staff.totp import enrol_totp


class StaffError(Exception):
    pass


def check_password(username: str, password: str) -> None:
    """AUTH_PASSWORD_VALIDATORS' verdict on ``password`` for a new user ``username``: StaffError
    with their messages, which never repeat the password."""
    try:
        validate_password(password, user=get_user_model()(username=username))
    except ValidationError as exc:
        raise StaffError(" ".join(exc.messages)) from None


def create_staff(
    username: str, password: str, *, group: str = OPS_GROUP, email: str = ""
) -> TOTPDevice:
    """A staff user in ``group`` with ``password`` and a confirmed TOTP device, returned."""
    User = get_user_model()
    check_password(username, password)
    with transaction.atomic():
        if User._default_manager.filter(username=username).exists():
            raise StaffError(
                f"User {username} already exists: `manage.py enrol_totp {username}` gives them a "
                "TOTP device, the admin their group and password."
            )
        if group == OPS_GROUP:
            chosen = ensure_ops_group()
        else:
            try:
                chosen = Group.objects.get(name=group)
            except Group.DoesNotExist:
                raise StaffError(
                    f"No group {group!r}: use {OPS_GROUP!r}, or add the group in the admin first."
                ) from None
        user = User._default_manager.create_user(username, email, password, is_staff=True)
        user.groups.add(chosen)
        record_command(
            AuditEvent.Event.STAFF_CHANGE,
            AuditEvent.Outcome.SUCCESS,
            action="changed",
            model=User._meta.label,
            object_id=str(user.pk),
            object=username,
            fields=["groups"],
            group=chosen.name,
        )
        return enrol_totp(username)
