from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"

    def ready(self) -> None:
        from monitoring import checks, receivers  # noqa: F401  (registers checks and receivers)
