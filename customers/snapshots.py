"""What a delete takes with it, kept so it can be put back exactly (undoing a merge).

A merge deletes the merged customer (and their emptied thread, and whatever other
apps keep per customer) and, when two cases in progress become one, the folded
case (its SLA, reads, mentions, labels). Django's own deletion collector says
what those deletes remove or set to NULL; here it is serialized before the delete
and restored by `deletion_restore`, with the same primary keys.
"""

from __future__ import annotations

import datetime
import decimal
import json
import uuid

from django.apps import apps
from django.core import serializers
from django.db import router
from django.db.models.deletion import Collector


class _ExactEncoder(json.JSONEncoder):
    """Times to the microsecond (Django's JSON encoder keeps milliseconds only)."""

    def default(self, o):
        if isinstance(o, datetime.datetime | datetime.date | datetime.time):
            return o.isoformat()
        if isinstance(o, decimal.Decimal | uuid.UUID):
            return str(o)
        return super().default(o)


def deletion_snapshot(obj) -> dict:
    """Everything deleting `obj` would remove, and the rows it would set to NULL."""
    collector = Collector(using=router.db_for_write(type(obj)))
    collector.collect([obj])
    collector.sort()
    objects = []
    for instances in collector.data.values():
        objects.extend(instances)
    for qs in collector.fast_deletes:
        if qs.model._meta.auto_created:
            continue  # m2m rows come back with their object's m2m field
        objects.extend(qs)
    nulled = []
    for (field, _value), targets in collector.field_updates.items():
        for target in targets:
            pks = [t.pk for t in target] if not hasattr(target, "pk") else [target.pk]
            if not pks:
                continue
            nulled.append(
                {
                    "model": target.model._meta.label
                    if hasattr(target, "model")
                    else type(target)._meta.label,
                    "field": field.attname,
                    "pks": pks,
                    "values": _values(field, pks, target),
                }
            )
    # Restored parents first: the collector sorted children before parents.
    rows = serializers.serialize("python", list(reversed(objects)))
    return {"objects": json.loads(json.dumps(rows, cls=_ExactEncoder)), "nulled": nulled}


def _values(field, pks, target):
    model = target.model if hasattr(target, "model") else type(target)
    return {
        str(pk): value
        for pk, value in model._default_manager.filter(pk__in=pks).values_list("pk", field.attname)
    }


def deletion_restore(snapshot: dict) -> list:
    """Put back what `deletion_snapshot` recorded. Call inside a transaction."""
    restored = []
    for item in serializers.deserialize("python", snapshot.get("objects") or []):
        item.save()
        restored.append(item.object)
    for update in snapshot.get("nulled", []):
        model = apps.get_model(update["model"])
        for pk, value in update["values"].items():
            model._default_manager.filter(pk=pk, **{f"{update['field']}__isnull": True}).update(
                **{update["field"]: value}
            )
    return restored
