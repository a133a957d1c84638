"""Django's clearsessions, audited: each expired admin session it deletes that held a signed-in
staff member is a staff_logout row (reason idle_timeout), as purge_sessions writes."""

from typing import Any

from calls.management.commands.purge_sessions import clear_staff_sessions
from keys.commands import DatabaseCommand


class Command(DatabaseCommand):
    help = (
        "Delete expired admin sessions, each idle sign-out recorded as staff_logout "
        "(purge_sessions does this too)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        deleted = clear_staff_sessions()
        self.stdout.write(f"Deleted {deleted} expired admin session(s).")
