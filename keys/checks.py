"""System checks of the keyring: misconfiguration is an error with an id at start-up, not a failed
call later. The ids keep the project's prefix (securegather.E001…): monitoring matches on them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.db import DEFAULT_DB_ALIAS, connection
from django.utils import timezone

from keys.database import missing_migrations, quiet_when_unreachable, unreachable
from keys.keyring import (
    TUTORIAL_SAMPLE_KEY,
    Keyring,
    KeyringError,
    get_keyring,
    parse_problems,
    read_keys_text,
)

KEYRING_HINT = (
    "Set SECUREGATHER_KEYS (or SECUREGATHER_KEYS_FILE) to 'kid:64-hex-chars' entries, comma "
    "separated, primary first; `manage.py generate_key` prints one."
)
# One id per way a keyring can be wrong, so monitoring can tell them apart.
KEYRING_PROBLEM_IDS = {
    "missing": "securegather.E001",
    "malformed": "securegather.E003",
    "length": "securegather.E004",
    "duplicate": "securegather.E005",
    "unreadable": "securegather.E006",
}


@register()
def check_keyring(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    try:
        text = read_keys_text()
    except KeyringError as exc:
        return [
            Error(
                f"The keyring is unusable: {exc}.",
                hint="Mount the keys file readable by the service, or unset "
                "SECUREGATHER_KEYS_FILE to read SECUREGATHER_KEYS.",
                id=KEYRING_PROBLEM_IDS[exc.problem],
            )
        ]
    keys, problems = parse_problems(text)
    errors: list[CheckMessage] = [
        Error(
            f"The keyring is unusable: {p}.", hint=KEYRING_HINT, id=KEYRING_PROBLEM_IDS[p.problem]
        )
        for p in problems
    ]
    sample = bytes.fromhex(TUTORIAL_SAMPLE_KEY)
    published = [key.kid for key in keys if key.secret == sample]
    if published and not settings.DEBUG:
        errors.append(
            Error(
                f"Key {published[0]!r} is the sample key published in Twilio's tutorial.",
                hint="Generate a key of your own with `manage.py generate_key`, put it first, run "
                "`manage.py rotate_keys`, then remove the sample key.",
                id="securegather.E002",
            )
        )
    return errors


@register(Tags.database)
def check_database_reachable(
    app_configs: Any = None, databases: Sequence[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Runs with ``check --database default`` (and before ``migrate``): a database that cannot
    be connected to is this one line, and the other database checks say nothing."""
    errors: list[CheckMessage] = []
    for alias in databases or ():
        if (why := unreachable(alias)) is not None:
            errors.append(Error(why + _named(alias), id="securegather.E012"))
    return errors


# A deployment check only: `migrate` runs the database checks before it migrates, and must not
# be stopped by the lack it is about to mend.
@register(Tags.database, deploy=True)
def check_database_migrated(
    app_configs: Any = None, databases: Sequence[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Runs with ``check --deploy --database default``."""
    errors: list[CheckMessage] = []
    for alias in databases or ():
        if unreachable(alias) is None and (lacking := missing_migrations(alias)) is not None:
            errors.append(Error(lacking + _named(alias), id="securegather.E013"))
    return errors


def _named(alias: str) -> str:
    """The database's alias, for a project that declares more than the default one."""
    return "" if alias == DEFAULT_DB_ALIAS else f" (database {alias!r})"


@register(Tags.database)
@quiet_when_unreachable
def check_keys_in_database(
    app_configs: Any = None, databases: Sequence[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Compare the ring with what the database holds. Runs with ``check --database default``."""
    from keys.models import KeyRecord

    if not databases or "default" not in databases:
        return []
    try:
        ring = get_keyring()
    except KeyringError:
        return []  # check_keyring says why
    if KeyRecord._meta.db_table not in connection.introspection.table_names():
        return []  # not migrated yet: `migrate` runs checks first
    return [
        *_changed_keys(ring),
        *_values_without_key(ring),
        *_cryptoperiod(ring, timezone.now()),
    ]


def _changed_keys(ring: Keyring) -> list[CheckMessage]:
    from keys.models import KeyRecord

    return [
        Error(
            f"Key id {kid!r} holds other bytes than when it was first used: values sealed "
            "under it no longer open and its digests no longer match.",
            hint=f"Put the original bytes back under {kid!r}; give a new key a new id.",
            id="securegather.E007",
        )
        for kid in KeyRecord.changed(ring.every_key)
    ]


def _values_without_key(ring: Keyring) -> list[CheckMessage]:
    from keys.rotation import retired_or_absent

    lacking = retired_or_absent(ring)
    if not lacking:
        return []
    counts = "; ".join(
        f"{label}: " + ", ".join(f"{n} under {kid!r}" for kid, n in sorted(per_kid.items()))
        for label, per_kid in sorted(lacking.items())
    )
    return [
        Error(
            f"The database holds values under key ids the ring lacks or holds only retired "
            f"({counts}): they no longer open or match.",
            hint="Put the old key back in the ring (not retired), run `manage.py rotate_keys`, "
            "then remove it.",
            id="securegather.E008",
        )
    ]


def _cryptoperiod(ring: Keyring, now: datetime) -> list[CheckMessage]:
    from keys.rotation import cryptoperiod_exceeded

    seals, age = cryptoperiod_exceeded(ring, now)
    warnings: list[CheckMessage] = []
    if seals is not None:
        warnings.append(
            Warning(
                f"Primary key {ring.primary.kid!r} has sealed about {seals} values, past "
                f"SECUREGATHER_KEY_MAX_SEALS ({settings.SECUREGATHER_KEY_MAX_SEALS}): random "
                "96-bit nonces allow at most 2**32 seals per key (NIST SP 800-38D 8.3).",
                hint="Put a new key first (`manage.py generate_key`) and run "
                "`manage.py rotate_keys`.",
                id="securegather.W001",
            )
        )
    if age is not None:
        warnings.append(
            Warning(
                f"Primary key {ring.primary.kid!r} has been in use {age} days, past "
                f"SECUREGATHER_KEY_MAX_AGE_DAYS ({settings.SECUREGATHER_KEY_MAX_AGE_DAYS}).",
                hint="Put a new key first (`manage.py generate_key`) and run "
                "`manage.py rotate_keys`.",
                id="securegather.W002",
            )
        )
    return warnings
