"""System checks for the call settings: Twilio, languages, a call's lifetime and retention."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, register

from calls.languages import SAY_LANGUAGES, VOICE_PATTERN, voice_entries


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


@register()
def check_voices(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    return [
        Error(
            f"SECUREGATHER_VOICES: {entry!r} does not name a language with prompts and a voice.",
            hint=f"Write language=voice, comma separated: a language of "
            f"{', '.join(SAY_LANGUAGES)}, then a voice such as Polly.Mia or "
            "Google.es-US-Standard-A, or nothing after the = for the account's default voice.",
            id="securegather.E031",
        )
        for entry, language, spoken_by in voice_entries(settings.SECUREGATHER_VOICES)
        if language not in SAY_LANGUAGES
        or "=" not in entry
        or (spoken_by and not re.fullmatch(VOICE_PATTERN, spoken_by))
    ]
