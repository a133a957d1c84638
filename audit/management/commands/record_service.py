import socket
from typing import Any

from django.core.management.base import CommandParser

from audit.models import AuditEvent
from audit.system import record_command
from keys.commands import DatabaseCommand

EVENTS = {
    "started": AuditEvent.Event.SERVICE_STARTED,
    "reloaded": AuditEvent.Event.SERVICE_RELOADED,
    "stopped": AuditEvent.Event.SERVICE_STOPPED,
}


class Command(DatabaseCommand):
    help = (
        "Record that the web service started, reloaded or stopped, as an audit row naming this "
        "host and the server's process id. gunicorn.conf.py runs it from gunicorn's hooks."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("what", choices=list(EVENTS))
        parser.add_argument("--pid", type=int, help="the server's process id")

    def handle(self, *args: Any, what: str, pid: int | None, **options: Any) -> None:
        process = {} if pid is None else {"pid": pid}
        record_command(EVENTS[what], AuditEvent.Outcome.INFO, host=socket.gethostname(), **process)
