from typing import Any

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models
from django.db.migrations.operations import AddIndex


class AddIndexWithoutBlocking(AddIndexConcurrently):
    """CREATE INDEX CONCURRENTLY on PostgreSQL, where a plain one would hold back every append
    to the audit log while it reads the whole table; a plain CREATE INDEX elsewhere (SQLite has
    no other, and locks the database for any write anyway)."""

    def database_forwards(self, app_label: str, schema_editor: Any, *states: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, *states)
        else:
            AddIndex.database_forwards(self, app_label, schema_editor, *states)

    def database_backwards(self, app_label: str, schema_editor: Any, *states: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, *states)
        else:
            AddIndex.database_backwards(self, app_label, schema_editor, *states)


class Migration(migrations.Migration):
    # CONCURRENTLY cannot run inside a transaction. Should the build fail on PostgreSQL, it
    # leaves an invalid index: drop it (DROP INDEX CONCURRENTLY audit_event_caller_idx), then
    # migrate again.
    atomic = False

    dependencies = [
        ('audit', '0005_caller_digest'),
    ]

    operations = [
        AddIndexWithoutBlocking(
            model_name='auditevent',
            index=models.Index(fields=['caller_digest'], name='audit_event_caller_idx'),
        ),
    ]
