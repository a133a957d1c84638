#!/usr/bin/env python3
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "securegather.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line
    from django.db import DatabaseError

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
    except DatabaseError:
        # Django's own commands (createsuperuser, changepassword, ...) on a database that cannot
        # be reached or was never migrated: that, in a line. Any other error is raised as it was,
        # and so is any of migrate's, the command that mends a lack of migrations.
        from keys.database import missing_migrations, unreachable

        why = unreachable()
        if why is None and sys.argv[1:2] != ["migrate"]:
            why = missing_migrations()
        if why is None:
            raise
        sys.exit(f"manage.py: {why}")


if __name__ == "__main__":
    main()
