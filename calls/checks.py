"""System checks for the call settings: how long a call lives and how long its session is kept."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register


@register()
def check_session_times(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    lifetime = settings.SECUREGATHER_SESSION_LIFETIME
    retention = settings.SECUREGATHER_SESSION_RETENTION
    if lifetime < 1 or retention < 1:
        return [
            Error(
                "SECUREGATHER_SESSION_LIFETIME and SECUREGATHER_SESSION_RETENTION must be at "
                "least 1.",
                hint="The defaults are 600 s and 86400 s.",
                id="calls.E001",
            )
        ]
    if retention < lifetime:
        # purge_sessions deletes by age: it would delete calls still in progress, whose next
        # step would then be refused as a replay.
        return [
            Error(
                f"SECUREGATHER_SESSION_RETENTION ({retention} s) is shorter than "
                f"SECUREGATHER_SESSION_LIFETIME ({lifetime} s): purge_sessions would delete "
                "calls still in progress.",
                hint="Keep sessions at least as long as a call may last (default 86400 s).",
                id="calls.E002",
            )
        ]
    return []
