from django.apps import AppConfig


class LegacyConfig(AppConfig):
    name = "legacy"
    verbose_name = "Tutorial-compatible API"

    def ready(self) -> None:
        from legacy import checks  # noqa: F401  (registers the system checks)
