"""Django's ``diffsettings``, with every secret masked as Django's error pages mask it.

Django's prints each setting as it is: the keyring, the Twilio auth token, the secret key and the
database password would land in a terminal's scrollback, or in a ticket it was pasted into.
"""

from typing import Any

from django.conf import Settings, global_settings, settings
from django.core.management.commands import diffsettings
from django.views.debug import get_default_exception_reporter_filter


class Command(diffsettings.Command):
    help = (
        "Displays differences between the current settings and Django's default settings, "
        "with keys, tokens and passwords masked."
    )

    # Django's two outputs print the very values they compare. Here settings are compared as
    # they are, so that a secret set here shows as changed and one left as the default does not,
    # and printed masked on both sides: the --default module has secrets of its own.

    def handle(self, **options: Any) -> str:
        default = options["default"]
        self.shown = (
            masked(settings),
            masked(Settings(default) if default else global_settings),
        )
        return super().handle(**options)

    def output_hash(
        self, user_settings: dict[str, str], default_settings: dict[str, str], **options: Any
    ) -> list[str]:
        ours, _ = self.shown
        output = []
        for key in sorted(user_settings):
            if key not in default_settings:
                output.append(f"{key} = {ours[key]}  ###")
            elif user_settings[key] != default_settings[key]:
                output.append(f"{key} = {ours[key]}")
            elif options["all"]:
                output.append(f"### {key} = {ours[key]}")
        return output

    def output_unified(
        self, user_settings: dict[str, str], default_settings: dict[str, str], **options: Any
    ) -> list[str]:
        ours, theirs = self.shown
        output = []
        for key in sorted(user_settings):
            if key not in default_settings:
                output.append(self.style.SUCCESS(f"+ {key} = {ours[key]}"))
            elif user_settings[key] != default_settings[key]:
                output.append(self.style.ERROR(f"- {key} = {theirs[key]}"))
                output.append(self.style.SUCCESS(f"+ {key} = {ours[key]}"))
            elif options["all"]:
                output.append(f"  {key} = {ours[key]}")
        return output


def masked(source: Any) -> dict[str, str]:
    """Each setting's repr, every secret among them (a name such as KEY, TOKEN or PASSWORD, at
    any depth) masked."""
    cleanse = get_default_exception_reporter_filter().cleanse_setting
    return {
        name: repr(cleanse(name, getattr(source, name)))
        for name in diffsettings.module_to_dict(source)
    }
