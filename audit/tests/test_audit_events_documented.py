"""Every audit event the code can write is explained in docs/audit-events.md's table, and the
table names no event the code lacks: what an assessor reads is what the log holds."""

import re
from pathlib import Path

from django.conf import settings

from audit.models import AuditEvent


def documented_events() -> list[str]:
    page = (Path(settings.BASE_DIR) / "docs" / "audit-events.md").read_text()
    section = page.split("\n## Audit events\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.MULTILINE)


def test_the_table_lists_every_audit_event_once():
    documented = documented_events()
    assert sorted(documented) == sorted(AuditEvent.Event.values)
    assert len(documented) == len(set(documented))
