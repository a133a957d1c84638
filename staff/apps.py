from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class StaffConfig(AppConfig):
    default = True  # this module holds two AppConfigs; this one is the app's
    name = "staff"
    verbose_name = "Staff"

    def ready(self) -> None:
        from staff import auditing, checks, roles, users  # noqa: F401  (registers them)


class StaffAdminConfig(admin_apps.AdminConfig):
    """Django's admin, served by the site that asks for a second factor and records what its
    "delete selected" action deletes."""

    default = False  # named in INSTALLED_APPS, in place of django.contrib.admin

    default_site = "staff.admin_site.StaffAdminSite"
