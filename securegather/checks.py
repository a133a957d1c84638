"""System checks: misconfiguration is an error with an id at start-up, not a failed call later."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, register

from securegather.keyring import TUTORIAL_SAMPLE_KEY, Keyring, KeyringError
from securegather.languages import SAY_LANGUAGES


@register()
def check_keyring(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    try:
        ring = Keyring.from_settings()
    except KeyringError as exc:
        return [
            Error(
                f"The keyring is unusable: {exc}.",
                hint="Set SECUREGATHER_KEYS to 'kid:64-hex-chars' entries, comma separated, "
                "primary first; `manage.py generate_key` prints one.",
                id="securegather.E001",
            )
        ]
    sample = bytes.fromhex(TUTORIAL_SAMPLE_KEY)
    published = [key.kid for key in ring.keys.values() if key.secret == sample]
    if published and not settings.DEBUG:
        return [
            Error(
                f"Key {published[0]!r} is the sample key published in Twilio's tutorial.",
                hint="Generate a key of your own with `manage.py generate_key`.",
                id="securegather.E002",
            )
        ]
    return []


@register()
def check_twilio(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    errors = []
    if not settings.TWILIO_AUTH_TOKEN:
        errors.append(
            Error(
                "TWILIO_AUTH_TOKEN is not set: every webhook request would be refused with 403.",
                hint="Copy the Auth Token from the Twilio Console into TWILIO_AUTH_TOKEN.",
                id="securegather.E010",
            )
        )
    public = settings.SECUREGATHER_PUBLIC_URL
    if public:
        parts = urlsplit(public)
        if parts.scheme not in {"http", "https"} or not parts.netloc or parts.path.strip("/"):
            errors.append(
                Error(
                    "SECUREGATHER_PUBLIC_URL must be an origin such as https://voice.example.com.",
                    hint="Give the scheme and host Twilio calls, with no path.",
                    id="securegather.E011",
                )
            )
    return errors


@register()
def check_language(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    if settings.SECUREGATHER_LANGUAGE in SAY_LANGUAGES:
        return []
    return [
        Error(
            "SECUREGATHER_LANGUAGE has no prompts in that language.",
            hint=f"Use one of {', '.join(SAY_LANGUAGES)}.",
            id="securegather.E030",
        )
    ]
