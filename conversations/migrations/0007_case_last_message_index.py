from django.db import migrations

# The All view (where search looks) newest first, in its exact order (last_message_at
# DESC NULLS LAST, id DESC): at 1M cases a page walks this index and stops when full
# instead of sorting every case (bench/scale.py). PostgreSQL only, like the full-text
# index of 0002: SQLite refuses NULLS LAST in an index, and the embedded demo is small.
INDEX = "case_last_message_desc"


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON conversations_case "
            "(last_message_at DESC NULLS LAST, id DESC)"
        )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0006_message_call_case_index"),
    ]

    operations = [migrations.RunPython(create_index, drop_index)]
