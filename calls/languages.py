"""The languages calls are spoken in: Twilio's <Say language> codes and Django's translations.

``SECUREGATHER_LANGUAGE`` names a Twilio code; the words come from the Django catalog of the same
language (``es-MX`` and ``es-ES`` both read ``locale/es``, Python's gettext falls back from the
region to the language).

Each language is spoken in a voice that speaks it: Twilio's default voice (``man``, or the one
the account sets in its console) speaks English, and with ``language="es-MX"`` it may fail the
``<Say>`` (Twilio: "an invalid combination of voice and language may result in error"), so the
Spanish prompts name an Amazon Polly voice of their own. ``SECUREGATHER_VOICES`` overrides them.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

from django.conf import settings
from django.utils import translation

ENGLISH = "en-US"
# Twilio <Say> codes SecureGather has prompts for; the first is the default.
SAY_LANGUAGES = (ENGLISH, "es-MX", "es-ES")
_BY_DJANGO_CODE = {code.lower(): code for code in SAY_LANGUAGES}
# Amazon Polly's standard voices for the Spanish prompts; English keeps the account's default.
DEFAULT_VOICES = {"es-MX": "Polly.Mia", "es-ES": "Polly.Lucia"}
# The forms Twilio takes in <Say voice>: its basic voices, or a Polly or Google voice by name.
VOICE_PATTERN = r"(man|woman|alice|Polly\.[A-Za-z]+(-[A-Za-z]+)?|Google\.[A-Za-z0-9-]+)"
# What a caller presses at "For English press 1, para español oprima 2".
KEYPRESS_ENGLISH, KEYPRESS_SPANISH = "1", "2"


def django_language(say_language: str) -> str:
    """Django's code for a Twilio code: "es-MX" → "es-mx"."""
    return say_language.lower()


def say_language() -> str:
    """The <Say language> for the active translation (in a webhook: the call's language)."""
    active = (translation.get_language() or "").lower()
    return _BY_DJANGO_CODE.get(active, ENGLISH)


def voice_entries(configured: str) -> Iterator[tuple[str, str, str]]:
    """SECUREGATHER_VOICES's "language=voice" entries as (entry, language, voice)."""
    for entry in configured.split(","):
        if entry.strip():
            language, _, spoken_by = entry.partition("=")
            yield entry.strip(), language.strip(), spoken_by.strip()


@functools.cache
def _voices(configured: str) -> dict[str, str]:
    return {**DEFAULT_VOICES, **{lang: v for _, lang, v in voice_entries(configured)}}


def voice(language: str) -> str:
    """The <Say voice> for a language, or "" for the account's default voice."""
    return _voices(settings.SECUREGATHER_VOICES).get(language, "")


def say_attributes() -> dict[str, str]:
    """<Say>'s language and voice for the active translation (in a webhook: the call's)."""
    language = say_language()
    spoken_by = voice(language)
    return {"language": language, "voice": spoken_by} if spoken_by else {"language": language}


def spanish() -> str:
    """The Spanish a caller who presses 2 hears: the configured one, else Mexican Spanish."""
    configured = settings.SECUREGATHER_LANGUAGE
    return configured if configured.startswith("es-") else "es-MX"


def for_keypress(digits: str) -> str:
    """The language a caller chose by keypad; anything but 1 or 2 keeps the configured one."""
    if digits == KEYPRESS_ENGLISH:
        return ENGLISH
    if digits == KEYPRESS_SPANISH:
        return spanish()
    return settings.SECUREGATHER_LANGUAGE
