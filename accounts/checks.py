"""System checks for the lockout settings: PCI DSS v4.0 8.3.4 sets the bounds."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

# 8.3.4: lock after no more than 10 invalid attempts, for at least 30 minutes.
PCI_MAX_FAILURES, PCI_MIN_DURATION = 10, 30 * 60
# The ceiling bounds PIN checks per account in any window this long (docs/security.md).
MONTH = 30 * 24 * 60 * 60


@register()
def check_lockout(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    failures = settings.SECUREGATHER_LOCKOUT_FAILURES
    window = settings.SECUREGATHER_LOCKOUT_WINDOW
    duration = settings.SECUREGATHER_LOCKOUT_DURATION
    ceiling = settings.SECUREGATHER_LOCKOUT_CEILING
    ceiling_window = settings.SECUREGATHER_LOCKOUT_CEILING_WINDOW
    guessing = (settings.SECUREGATHER_GUESSING_FAILURES, settings.SECUREGATHER_GUESSING_WINDOW)
    if min(failures, window, duration, ceiling, ceiling_window, *guessing) < 1:
        return [
            Error(
                "SECUREGATHER_LOCKOUT_FAILURES, _WINDOW, _DURATION, _CEILING, _CEILING_WINDOW, "
                "SECUREGATHER_GUESSING_FAILURES and _WINDOW must all be at least 1.",
                hint="The defaults are 5 failures within 86400 s, locked for 1800 s; at most "
                "10 within 2592000 s; 100 failures in 3600 s for the guessing watch.",
                id="accounts.E001",
            )
        ]
    if ceiling > PCI_MAX_FAILURES or ceiling_window < MONTH:
        return [
            Warning(
                f"The lockout's ceiling ({ceiling} failures within {ceiling_window} s) lets a "
                f"guesser more than {PCI_MAX_FAILURES} PIN checks of an account in 30 days.",
                hint="Lower SECUREGATHER_LOCKOUT_CEILING to at most 10, and keep "
                f"SECUREGATHER_LOCKOUT_CEILING_WINDOW at least {MONTH} s.",
                id="accounts.W002",
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
