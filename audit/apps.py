from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit log"

    def ready(self) -> None:
        # Imported to register their checks and receivers.
        from audit import checks, database_checks, origins, receivers, role_checks  # noqa: F401
