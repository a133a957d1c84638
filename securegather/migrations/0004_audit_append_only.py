"""The database itself refuses UPDATE and DELETE on the audit table (and TRUNCATE of a non-empty
one on PostgreSQL), whoever asks: the ORM, raw SQL or a console."""

from django.db import migrations

from securegather import appendonly


def create_triggers(apps, schema_editor):
    appendonly.create_triggers(schema_editor.connection)


def drop_triggers(apps, schema_editor):
    appendonly.drop_triggers(schema_editor.connection)


class Migration(migrations.Migration):

    dependencies = [
        ("securegather", "0003_audit_chain"),
    ]

    operations = [
        migrations.RunPython(create_triggers, drop_triggers),
    ]
