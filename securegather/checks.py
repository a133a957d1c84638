"""The system checks run before serving: each app registers its own (keys, audit, calls, ...)."""

from __future__ import annotations

import io

from django.core.management import call_command


def check_before_serving() -> None:
    """Run what `manage.py check` runs, as a server loads the application.

    gunicorn runs no system checks, and a server with a broken keyring or no auth token would
    start, pass its health check and answer every call with an apology. Raises
    SystemCheckError, which names each error's id, so the worker fails to boot and gunicorn
    stops. Warnings go to stderr, as `manage.py check` prints them.
    """
    call_command("check", stdout=io.StringIO())
