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
        if sys.argv[1:2] == ["generate_key"]:
            # The first key of a new host is made before its settings exist, and making it reads
            # none. Every other command still stops here: a missing secret key is never guessed.
            from keys.generate import main as generate_key

            sys.exit(generate_key(sys.argv[2:]))
        # What the environment lacks (a variable, a readable env file), in one line: Django's
        # traceback would bury it.
        sys.exit(f"manage.py: {str(exc).rstrip('.')}. See docs/configuration.md.")


if __name__ == "__main__":
    main()
