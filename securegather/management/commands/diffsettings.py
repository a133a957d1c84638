"""Django's ``diffsettings``, with every secret masked as Django's error pages mask it.

Django's prints each setting as it is: the keyring, the Twilio auth token, the secret key and the
database password would land in a terminal's scrollback, or in a ticket it was pasted into.
"""

from typing import Any

from django.core.management.commands import diffsettings
from django.views.debug import get_default_exception_reporter_filter


class Command(diffsettings.Command):
    help = (
        "Displays differences between the current settings and Django's default settings, "
        "with keys, tokens and passwords masked."
    )

    def output_hash(self, user_settings: dict[str, str], *args: Any, **options: Any) -> list[str]:
        return super().output_hash(masked(user_settings), *args, **options)

    def output_unified(
        self, user_settings: dict[str, str], *args: Any, **options: Any
    ) -> list[str]:
        return super().output_unified(masked(user_settings), *args, **options)


def masked(user_settings: dict[str, str]) -> dict[str, str]:
    """The settings' reprs, each secret among them (a name such as KEY, TOKEN or PASSWORD, at any
    depth) masked."""
    safe = get_default_exception_reporter_filter().get_safe_settings()
    return {
        name: repr(safe[name]) if name in safe else shown for name, shown in user_settings.items()
    }
