"""A new row's INSERT without the ORM's compiling, for the rows every inbound message writes.

The drainer inserts a message (and often a case) per inbound message; building
that INSERT through the ORM (`SQLInsertCompiler.as_sql`, the save machinery)
was a fifth of its CPU (bench/README.md, "Ingest drain, session 9"). The
statement is built once per model, and each row's values go through the same
field preparation `save()` uses, so what is stored is what `save()` stores.
"""

from __future__ import annotations

from django.db import connection

_statements: dict[type, tuple[list, str]] = {}


def _statement(model) -> tuple[list, str]:
    if model not in _statements:
        fields = [f for f in model._meta.concrete_fields if f is not model._meta.auto_field]
        quote = connection.ops.quote_name
        sql = (
            f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "  # noqa: S608 - our names
            f"VALUES ({', '.join(['%s'] * len(fields))}) RETURNING {quote(model._meta.auto_field.column)}"
        )
        _statements[model] = (fields, sql)
    return _statements[model]


def row_insert(obj) -> None:
    """Insert the unsaved `obj` as `obj.save()` would, sending no pre_save / post_save signals.

    Only for models nobody listens to those signals of (Message and Case
    today; audit listens to Customer's and Identity's, so they keep save()).
    """
    if connection.vendor != "postgresql":
        obj.save(force_insert=True)
        return
    fields, sql = _statement(type(obj))
    values = [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        obj.pk = cursor.fetchone()[0]
    obj._state.adding = False
    obj._state.db = connection.alias
