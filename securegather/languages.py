"""The languages calls are spoken in: Twilio's <Say language> codes and Django's translations.

``SECUREGATHER_LANGUAGE`` names a Twilio code; the words come from the Django catalog of the same
language (``es-MX`` and ``es-ES`` both read ``locale/es``, Python's gettext falls back from the
region to the language).
"""

from __future__ import annotations

from django.conf import settings
from django.utils import translation

ENGLISH = "en-US"
# Twilio <Say> codes SecureGather has prompts for; the first is the default.
SAY_LANGUAGES = (ENGLISH, "es-MX", "es-ES")
_BY_DJANGO_CODE = {code.lower(): code for code in SAY_LANGUAGES}
# What a caller presses at "For English press 1, para español oprima 2".
KEYPRESS_ENGLISH, KEYPRESS_SPANISH = "1", "2"


def django_language(say_language: str) -> str:
    """Django's code for a Twilio code: "es-MX" → "es-mx"."""
    return say_language.lower()


def say_language() -> str:
    """The <Say language> for the active translation (in a webhook: the call's language)."""
    active = (translation.get_language() or "").lower()
    return _BY_DJANGO_CODE.get(active, ENGLISH)


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
