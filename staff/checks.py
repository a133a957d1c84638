"""System checks of the settings staff auditing hangs on: without them, idle sign-outs and password
changes made outside the admin would go unrecorded, silently."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register

SESSION_ENGINE = "staff.sessions"
CHANGE_RECORDER = "staff.users.PasswordChangeRecorded"


@register()
def check_session_engine(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    if settings.SESSION_ENGINE == SESSION_ENGINE:
        return []
    return [
        Error(
            f"SESSION_ENGINE is {settings.SESSION_ENGINE!r}: clearsessions and purge_sessions "
            "would delete expired admin sessions without recording the idle sign-outs.",
            hint=f"Set SESSION_ENGINE = {SESSION_ENGINE!r}.",
            id="staff.E001",
        )
    ]


@register()
def check_password_recorder(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    names = [
        validator.get("NAME")
        for validator in settings.AUTH_PASSWORD_VALIDATORS
        if isinstance(validator, dict)
    ]
    if CHANGE_RECORDER in names:
        return []
    return [
        Error(
            "AUTH_PASSWORD_VALIDATORS lacks the validator that records password changes made "
            "outside the admin (changepassword, createsuperuser, the shell).",
            hint=f'Add {{"NAME": "{CHANGE_RECORDER}"}} to AUTH_PASSWORD_VALIDATORS.',
            id="staff.E002",
        )
    ]
