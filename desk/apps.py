from django.apps import AppConfig


class DeskConfig(AppConfig):
    """The ops desk: the admin's first page and its refusals, drawn from every app below it."""

    name = "desk"
    verbose_name = "Ops desk"
