"""The database itself refuses UPDATE and DELETE on the audit table (and TRUNCATE of a non-empty
one on PostgreSQL), whoever asks: the ORM, raw SQL or a console. And the chain's head starts."""

from django.db import migrations

from audit import appendonly


def create_triggers(apps, schema_editor):
    appendonly.create_triggers(schema_editor.connection)


def drop_triggers(apps, schema_editor):
    appendonly.drop_triggers(schema_editor.connection)


def start_the_chain(apps, schema_editor):
    """The head row every append locks: the next row links to its (empty) MAC."""
    AuditChainHead = apps.get_model("audit", "AuditChainHead")
    AuditChainHead.objects.using(schema_editor.connection.alias).get_or_create(id=1)


class Migration(migrations.Migration):

    dependencies = [
        ("audit", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(create_triggers, drop_triggers),
        migrations.RunPython(start_the_chain, migrations.RunPython.noop),
    ]
