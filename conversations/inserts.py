"""A row's INSERT or UPDATE without the ORM's compiling, for the rows every inbound message writes.

The drainer inserts a message (and often a case) per inbound message; building
that INSERT through the ORM (`SQLInsertCompiler.as_sql`, the save machinery)
was a fifth of its CPU (bench/README.md, "Ingest drain, session 9"). The
statement is built once per model, and each row's values go through the same
field preparation `save()` uses, so what is stored is what `save()` stores.
"""

from __future__ import annotations

from django.db import connection

_statements: dict[object, tuple[list, str]] = {}


def insert_into(model) -> tuple[list, str]:
    """The fields and the `INSERT INTO table (columns) VALUES (...)` of `model`, built once;
    a caller may wrap it (conversations.replies adds the case's touch in the same statement)."""
    key = (model, "insert")
    if key not in _statements:
        fields = [f for f in model._meta.concrete_fields if f is not model._meta.auto_field]
        quote = connection.ops.quote_name
        sql = (
            f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "  # noqa: S608 - our names
            f"VALUES ({', '.join(['%s'] * len(fields))})"
        )
        _statements[key] = (fields, sql)
    return _statements[key]


def insert_values(obj, fields) -> list:
    """`obj`'s values for insert_into's statement, prepared as save() prepares them."""
    return [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]


def row_insert(obj) -> None:
    """Insert the unsaved `obj` as `obj.save()` would, sending no pre_save / post_save signals.

    Only for models nobody listens to those signals of (Message and Case
    today; audit listens to Customer's and Identity's, so they keep save()).
    """
    if connection.vendor != "postgresql":
        obj.save(force_insert=True)
        return
    fields, sql = insert_into(type(obj))
    with connection.cursor() as cursor:
        cursor.execute(
            f"{sql} RETURNING {connection.ops.quote_name(obj._meta.auto_field.column)}",
            insert_values(obj, fields),
        )
        obj.pk = cursor.fetchone()[0]
    obj._state.adding = False
    obj._state.db = connection.alias


def row_update(obj, *, fields: list[str]) -> None:
    """`obj.save(update_fields=fields)` without the ORM's compiling or signals (as row_insert).

    For a row the caller holds locked (a case under its thread's lock): no
    check that it still exists.
    """
    if connection.vendor != "postgresql":
        obj.save(update_fields=fields)
        return
    model, key = type(obj), (type(obj), tuple(fields))
    if key not in _statements:
        columns = [model._meta.get_field(name) for name in fields]
        quote = connection.ops.quote_name
        assignments = ", ".join(f"{quote(f.column)} = %s" for f in columns)
        sql = (
            f"UPDATE {quote(model._meta.db_table)} SET {assignments} "  # noqa: S608 - our names
            f"WHERE {quote(model._meta.pk.column)} = %s"
        )
        _statements[key] = (columns, sql)
    columns, sql = _statements[key]
    values = [f.get_db_prep_save(f.pre_save(obj, False), connection) for f in columns]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*values, obj.pk])
