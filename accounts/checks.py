"""System checks for the lockout settings (PCI DSS v4.0 8.3.4 sets the bounds) and for the HTTP
resolver's."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

from keys import hpke

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


# A signing secret shorter than this is guessable offline from one signed request.
MIN_SECRET_LENGTH = 32


@register()
def check_backend(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The HTTP resolver's settings, checked only when it (or a subclass) is the one in use."""
    from accounts.resolvers import seals_for_backend  # it imports the models

    try:
        in_use = seals_for_backend()
    except ImportError:
        return []  # a resolver that does not import is another check's to report
    if not in_use:
        return []
    errors: list[CheckMessage] = []
    url = urlsplit(settings.SECUREGATHER_BACKEND_URL)
    loopback = url.hostname in ("localhost", "127.0.0.1", "::1")
    if not url.hostname or not (url.scheme == "https" or (url.scheme == "http" and loopback)):
        errors.append(
            Error(
                "SECUREGATHER_BACKEND_URL must be an https:// URL (http:// only to this host).",
                hint="e.g. https://accounts.example.com/securegather/resolve",
                id="accounts.E010",
            )
        )
    try:
        keys = hpke.parse_public_keys(settings.SECUREGATHER_BACKEND_PUBLIC_KEYS)
    except hpke.BackendKeyError as exc:
        keys = []
        errors.append(
            Error(
                f"SECUREGATHER_BACKEND_PUBLIC_KEYS: {exc}.",
                hint="`manage.py backend_keypair --id KID --out FILE` prints an entry.",
                id="accounts.E011",
            )
        )
    kem = settings.SECUREGATHER_BACKEND_KEM
    if kem not in hpke.KEMS:
        errors.append(
            Error(
                f"SECUREGATHER_BACKEND_KEM must be one of {', '.join(hpke.KEMS)}.",
                id="accounts.E015",
            )
        )
    elif keys and not any(key.kem.name == kem for key in keys):
        errors.append(
            Error(
                f"SECUREGATHER_BACKEND_KEM is {kem}, and SECUREGATHER_BACKEND_PUBLIC_KEYS holds "
                f"no {kem} key to seal with.",
                hint=f"`manage.py backend_keypair --kem {kem} --id KID --out FILE` makes one; "
                "give the private key to the backend before SecureGather seals to it.",
                id="accounts.E015",
            )
        )
    if len(settings.SECUREGATHER_BACKEND_SECRET) < MIN_SECRET_LENGTH:
        errors.append(
            Error(
                f"SECUREGATHER_BACKEND_SECRET must hold at least {MIN_SECRET_LENGTH} characters.",
                hint="`python -c 'import secrets; print(secrets.token_urlsafe(32))'` makes one; "
                "the backend is given the same.",
                id="accounts.E012",
            )
        )
    cert, key = settings.SECUREGATHER_BACKEND_CLIENT_CERT, settings.SECUREGATHER_BACKEND_CLIENT_KEY
    ca = settings.SECUREGATHER_BACKEND_CA_FILE
    if bool(cert) != bool(key) or not all(Path(f).is_file() for f in (cert, key, ca) if f):
        errors.append(
            Error(
                "SECUREGATHER_BACKEND_CLIENT_CERT and _CLIENT_KEY go together, and every file "
                "they and SECUREGATHER_BACKEND_CA_FILE name must exist.",
                id="accounts.E013",
            )
        )
    if not 0 < settings.SECUREGATHER_BACKEND_TIMEOUT <= 10:
        errors.append(
            Error(
                "SECUREGATHER_BACKEND_TIMEOUT must be more than 0 and at most 10 seconds.",
                hint="Twilio waits 15 s for the whole step; the default is 3.",
                id="accounts.E014",
            )
        )
    return errors
