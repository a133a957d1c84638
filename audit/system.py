"""Rows written outside any request (management commands, migrations, the service's hooks), by
the OS user who ran them."""

from __future__ import annotations

import getpass
from typing import Any

from audit.models import AuditEvent


def command_actor() -> str:
    """Who runs a management command: their OS login name, or "system" when there is none (no
    login variable in the environment and no passwd entry for the process's uid)."""
    try:
        return getpass.getuser() or "system"
    except (OSError, KeyError, ImportError):  # OSError from Python 3.13, KeyError before it
        return "system"


def record_command(event: str, outcome: str, **detail: Any) -> None:
    """A row written by a command, or a receiver outside any request, by the OS user who ran it
    (:func:`command_actor`)."""
    AuditEvent.record(
        event, outcome, actor=command_actor(), channel=AuditEvent.Channel.SYSTEM, **detail
    )
