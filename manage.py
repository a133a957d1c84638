#!/usr/bin/env python3
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "securegather.settings")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        settings.INSTALLED_APPS  # noqa: B018 (reads the environment: a missing variable is here)
    except ImproperlyConfigured as exc:
        # What the environment lacks, in one line: a traceback would bury it.
        sys.exit(f"manage.py: {str(exc).rstrip('.')}. See README.md, Configuration.")
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
