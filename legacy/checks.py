"""System checks for the tutorial-compatible API's key and token."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

from keys.keyring import TUTORIAL_SAMPLE_KEY
from legacy.ciphertext import LegacyKeyError, legacy_key


@register()
def check_legacy_key(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    try:
        key = legacy_key()
    except LegacyKeyError as exc:
        return [
            Error(
                f"{exc}.",
                hint="Copy the AES_SECRET of your Twilio Functions service: 64 hex characters.",
                id="legacy.E001",
            )
        ]
    if key is None:
        return []
    if key == bytes.fromhex(TUTORIAL_SAMPLE_KEY) and not settings.DEBUG:
        return [
            Error(
                "SECUREGATHER_LEGACY_KEY is the sample key published in Twilio's tutorial.",
                hint="Generate a new AES_SECRET (`openssl rand -hex 32`) and set it in both the "
                "Functions service and SECUREGATHER_LEGACY_KEY.",
                id="legacy.E002",
            )
        ]
    if not settings.SECUREGATHER_API_TOKEN and not settings.DEBUG:
        return [
            Warning(
                "POST /api/decrypt-gather is open to anyone: SECUREGATHER_API_TOKEN is not set.",
                hint="Set SECUREGATHER_API_TOKEN and send it from the Function as "
                "'Authorization: Bearer <token>'.",
                id="legacy.W001",
            )
        ]
    return []
