#!/usr/bin/env python3
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "securegather.settings")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line
    from django.core.management.base import CommandError, CommandParser, handle_default_options

    # --settings and --pythonpath first, as Django's execute() takes them: settings read before
    # them would stay the default module's, whatever the command line names.
    parser = CommandParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--settings")
    parser.add_argument("--pythonpath")
    try:
        options, _ = parser.parse_known_args(sys.argv[2:])
        handle_default_options(options)
    except CommandError:
        pass  # execute_from_command_line says what is wrong with the command line
    try:
        settings.INSTALLED_APPS  # noqa: B018 (reads the environment: a missing variable is here)
    except ImproperlyConfigured as exc:
        # What the environment lacks, in one line: a traceback would bury it.
        sys.exit(f"manage.py: {str(exc).rstrip('.')}. See README.md, Configuration.")
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
