from django.db import migrations

# The inbox search matches customers' names and addresses anywhere in the text
# (icontains: UPPER(col::text) LIKE UPPER('%q%')). Trigram GIN indexes on that
# very expression let PostgreSQL answer it without reading every customer.
# PostgreSQL only (pg_trgm is a trusted extension: the database owner may add
# it); the embedded SQLite default keeps its plain LIKE.
INDEXES = {
    "customers_customer_name_trgm": ("customers_customer", "name"),
    "customers_identity_address_trgm": ("customers_identity", "address"),
}


def create_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, (table, column) in INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin ((UPPER({column}::text)) gin_trgm_ops)"
        )


def drop_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("customers", "0001_initial")]

    operations = [migrations.RunPython(create_trigram_indexes, drop_trigram_indexes)]
