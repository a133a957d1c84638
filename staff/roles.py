"""Staff roles. "ops" views calls, accounts, lockouts and the audit log, exports the audit log,
and changes nothing (lifting a lock takes ``accounts.lift_lockout``). Kept in step after every
``migrate`` (and test flush), so new databases have it."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig, apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission
from django.db.models.signals import post_migrate
from django.dispatch import receiver

OPS_GROUP = "ops"
OPS_PERMISSIONS = [
    ("calls", "view_callsession"),
    ("accounts", "view_account"),
    ("accounts", "view_lockout"),
    ("audit", "view_auditevent"),
    ("audit", "export_auditevent"),
]


def ensure_ops_group(using: str = "default") -> Group:
    """Create the "ops" group, or reset its permissions to exactly the view-only set."""
    for label in {app_label for app_label, _ in OPS_PERMISSIONS}:
        # Permissions are made after each app's migrations; ours may run before some of them.
        create_permissions(apps.get_app_config(label), verbosity=0, using=using)
    group, _ = Group.objects.using(using).get_or_create(name=OPS_GROUP)
    permissions = [
        Permission.objects.using(using).get(content_type__app_label=app_label, codename=codename)
        for app_label, codename in OPS_PERMISSIONS
    ]
    group.permissions.set(permissions)
    return group


@receiver(post_migrate, dispatch_uid="staff.ops_group")
def _ops_group_after_migrate(sender: AppConfig, using: str = "default", **kwargs: Any) -> None:
    if sender.name != "staff":
        return
    migrated = kwargs.get("apps")
    try:
        # A migrate of some apps only (`migrate staff`) may leave auth's tables unmade:
        # the next whole migrate makes the group, as Django makes permissions.
        if migrated is not None:
            migrated.get_model("contenttypes", "ContentType")
            migrated.get_model("auth", "Permission")
    except LookupError:
        return
    ensure_ops_group(using)
