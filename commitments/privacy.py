"""A customer's commitments in a GDPR export, and their words gone on erasure (privacy.signals).

The rows stay (who promised, when, whether it was kept), the text goes: a
promise quotes what the customer asked for.
"""

from __future__ import annotations

from commitments.models import Commitment


def _at(value):
    return value.isoformat() if value else None


def commitment_export_sections(sender, customer, **kwargs) -> dict:
    return {
        "commitments": [
            {
                "id": c.pk,
                "text": c.text,
                "due_on": _at(c.due_on),
                "status": c.status,
                "created_at": _at(c.created_at),
                "closed_at": _at(c.closed_at),
                "close_note": c.close_note,
            }
            for c in Commitment.objects.filter(customer=customer).order_by("pk")
        ]
    }


def commitment_erase(sender, customer, thread, **kwargs) -> None:
    Commitment.objects.filter(customer=customer).update(text="", close_note="")
