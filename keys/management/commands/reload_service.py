from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from keys.reloading import ReloadRefused, read_pid, refuse_root, reload_service


class Command(BaseCommand):
    help = (
        "Reload gunicorn (new settings and keys) only when its new workers can start: runs the "
        "system checks in the master's environment, then sends it HUP. Refuses, exit status 1, "
        "leaving the running workers serving, when they fail. Run it as the service's user."
    )
    # It runs the checks itself, in the server's environment, and reports what fails.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--pidfile", type=Path, help="gunicorn's pid file (its --pid)")
        which.add_argument("--pid", type=int, help="the gunicorn master's process id")

    def handle(self, *args: Any, pidfile: Path | None, pid: int | None, **options: Any) -> None:
        try:
            refuse_root()
            if pid is None:
                assert pidfile is not None  # one of the two is required
                pid = read_pid(pidfile)
            reload_service(pid)
        except ReloadRefused as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"The checks pass: sent HUP to gunicorn (pid {pid}). New workers start with the new "
            "configuration; the old ones finish their requests and stop."
        )
