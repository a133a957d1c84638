"""System checks for the lockout settings: PCI DSS v4.0 8.3.4 sets the bounds."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

# 8.3.4: lock after no more than 10 invalid attempts, for at least 30 minutes.
PCI_MAX_FAILURES, PCI_MIN_DURATION = 10, 30 * 60


@register()
def check_lockout(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    failures = settings.SECUREGATHER_LOCKOUT_FAILURES
    window = settings.SECUREGATHER_LOCKOUT_WINDOW
    duration = settings.SECUREGATHER_LOCKOUT_DURATION
    if failures < 1 or window < 1 or duration < 1:
        return [
            Error(
                "SECUREGATHER_LOCKOUT_FAILURES, _WINDOW and _DURATION must all be at least 1.",
                hint="The defaults are 5 failures within 86400 s, locked for 1800 s.",
                id="accounts.E001",
            )
        ]
    if failures > PCI_MAX_FAILURES or duration < PCI_MIN_DURATION:
        return [
            Warning(
                f"The lockout ({failures} failures, {duration} s locked) is weaker than PCI DSS "
                f"v4.0 8.3.4 allows: at most {PCI_MAX_FAILURES} failures, at least "
                f"{PCI_MIN_DURATION} s locked.",
                hint="Lower SECUREGATHER_LOCKOUT_FAILURES or raise SECUREGATHER_LOCKOUT_DURATION.",
                id="accounts.W001",
            )
        ]
    return []
