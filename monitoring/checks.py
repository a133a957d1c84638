"""Misconfiguration of the metrics endpoint, as system checks."""

from __future__ import annotations

import ipaddress
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

# A token a scraper sends on every request: as long as a key, so it cannot be guessed.
TOKEN_MIN_LENGTH = 32


@register()
def check_metrics_access(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    problems: list[CheckMessage] = []
    for entry in settings.SECUREGATHER_METRICS_ADDRESSES:
        try:
            ipaddress.ip_network(entry.strip(), strict=False)
        except ValueError:
            problems.append(
                Error(
                    f"SECUREGATHER_METRICS_ADDRESSES holds {entry!r}, which is no IP address or "
                    "network.",
                    hint="List addresses or networks, comma separated, e.g. 127.0.0.1,10.0.0.0/8.",
                    id="monitoring.E001",
                )
            )
    token = settings.SECUREGATHER_METRICS_TOKEN
    if token and len(token) < TOKEN_MIN_LENGTH:
        problems.append(
            Warning(
                f"SECUREGATHER_METRICS_TOKEN is {len(token)} characters long: a short token can "
                "be guessed.",
                hint=f"Use at least {TOKEN_MIN_LENGTH} random characters, e.g. `python -c "
                "'import secrets; print(secrets.token_urlsafe(32))'`.",
                id="monitoring.W001",
            )
        )
    return problems
