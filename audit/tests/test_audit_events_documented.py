"""Every audit event the code can write is explained in README's table (Admin and audit), and
the table names no event the code lacks: what an assessor reads is what the log holds."""

import re
from pathlib import Path

from django.conf import settings

from audit.models import AuditEvent


def documented_events() -> list[str]:
    readme = (Path(settings.BASE_DIR) / "README.md").read_text()
    table = readme.split("### Audit events", 1)[1].split("\n\n")[2]
    return re.findall(r"^\| `([a-z_]+)` \|", table, flags=re.MULTILINE)


def test_the_readme_table_lists_every_audit_event_once():
    documented = documented_events()
    assert sorted(documented) == sorted(AuditEvent.Event.values)
    assert len(documented) == len(set(documented))
