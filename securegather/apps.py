from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class SecureGatherConfig(AppConfig):
    default = True  # this module holds two AppConfigs; this one is the app's
    name = "securegather"
    verbose_name = "SecureGather"

    def ready(self) -> None:
        from securegather import checks, roles, staff_audit  # noqa: F401  (registers them)


class StaffAdminConfig(admin_apps.AdminConfig):
    """Django's admin, served by the site that asks for a second factor."""

    default = False  # named in INSTALLED_APPS, in place of django.contrib.admin

    default_site = "securegather.admin_site.StaffAdminSite"
