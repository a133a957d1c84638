from django.apps import AppConfig


class SecureGatherConfig(AppConfig):
    name = "securegather"
    verbose_name = "SecureGather"

    def ready(self) -> None:
        from securegather import checks  # noqa: F401  (registers the system checks)
