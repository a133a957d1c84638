#!/usr/bin/env python3
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "securegather.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:
        # What the environment lacks (a variable, a readable env file), in one line: Django's
        # traceback would bury it.
        sys.exit(f"manage.py: {str(exc).rstrip('.')}. See docs/configuration.md.")


if __name__ == "__main__":
    main()
