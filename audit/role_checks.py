"""The check that the service's database login cannot undo the audit table's protection: it owns
no table, nor the tables' schema or the database, may create nothing in them, and may only read
and append to the audit log (audit.roles)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register
from django.db import connection

from audit import roles
from keys.database import quiet_when_unreachable

HINT = (
    "Run the service as a role that owns nothing: migrate as the owner, then run `manage.py "
    "grant_runtime_role ROLE` as the owner and put ROLE in the service's DATABASE_URL "
    "(docs/deployment.md, 'Database roles'). A development database with one role, and the "
    "owner's own `migrate` step, pass with SECUREGATHER_DATABASE_ONE_ROLE=true."
)


@register(Tags.database)
@quiet_when_unreachable
def check_runtime_role(
    app_configs: Any = None, databases: Sequence[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Runs with ``check --database default``; PostgreSQL only (SQLite has no roles)."""
    if not databases or "default" not in databases:
        return []
    if settings.SECUREGATHER_DATABASE_ONE_ROLE or connection.vendor != "postgresql":
        return []
    errors: list[CheckMessage] = []
    held = []
    if owned := roles.owned_tables(connection):
        held.append(
            f"owns {len(owned)} of the project's tables "
            f"({', '.join(owned[:3])}{', …' if len(owned) > 3 else ''})"
        )
    # The schema's or the database's owner can drop the tables with their triggers; CREATE
    # there plants objects that shadow them.
    held += roles.own_footholds(connection)
    if held:
        errors.append(
            Error(
                f"The service's database role {'; '.join(held)}: it can disable or drop the "
                "audit table's triggers, or shadow the table, then rewrite, cut or wipe the log.",
                hint=HINT,
                id="audit.E002",
            )
        )
    if excess := roles.excess_audit_privileges(connection):
        errors.append(
            Error(
                f"The service's database role holds {', '.join(excess)} on {roles.AUDIT_TABLE}: "
                "it needs only SELECT, and INSERT of its columns but id, and each of these can "
                "lose rows or block appends.",
                hint=HINT,
                id="audit.E003",
            )
        )
    return errors
