"""Where a value is still stored: every text, JSON and binary column of every table."""

from django.db import connection

TEXT_TYPES = ("text", "character varying", "json", "jsonb")


def tables_holding(values: list[str]) -> dict[str, list[str]]:
    """{"table.column": [values found]} over the whole database (PostgreSQL)."""
    found: dict[str, list[str]] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' AND data_type IN ('text', 'character varying', 'json', "
            "'jsonb', 'bytea')"
        )
        columns = cursor.fetchall()
        assert len(columns) > 50, "the scan must see the whole schema"
        for table, column, data_type in columns:
            for value in values:
                if data_type == "bytea":
                    sql = f'SELECT 1 FROM "{table}" WHERE position(%s::bytea in "{column}") > 0 LIMIT 1'
                    params = [value.encode()]
                else:
                    sql = f'SELECT 1 FROM "{table}" WHERE "{column}"::text ILIKE %s LIMIT 1'
                    params = ["%" + value.replace("%", r"\%").replace("_", r"\_") + "%"]
                cursor.execute(sql, params)
                if cursor.fetchone():
                    found.setdefault(f"{table}.{column}", []).append(value)
    return found
