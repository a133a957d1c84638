from django.apps import AppConfig


class DeskConfig(AppConfig):
    """The ops desk: the admin's first page and its refusals, drawn from every app below it."""

    name = "desk"
    verbose_name = "Ops desk"

    def ready(self) -> None:
        from django.contrib import admin

        # The admin's first page: the dashboard, then the list of models. Set from here, the
        # higher layer, so that the staff site names nothing of the desk.
        admin.site.index_template = "desk/index.html"
