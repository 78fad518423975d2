"""The customer's outreach data in a GDPR export, and gone on erasure (privacy.signals).

What we wrote to them (each outreach's text and what became of it) and what
they said about being written to (consents) are theirs under articles 15 and
20; on erasure the texts go and the rows stay, so campaign funnels keep their
counts, as the KPIs do.
"""

from __future__ import annotations

from outreach.models import Consent, Outreach, OutreachStep


def _at(value):
    return value.isoformat() if value else None


def outreach_export_sections(sender, customer, **kwargs) -> dict:
    consents = [
        {
            "channel_kind": c.channel_kind,
            "status": c.status,
            "source": c.source,
            "evidence": c.evidence,
            "updated_at": _at(c.updated_at),
        }
        for c in Consent.objects.filter(customer=customer).order_by("channel_kind")
    ]
    outreaches = [
        {
            "id": o.pk,
            "created_at": _at(o.created_at),
            "subject": o.subject,
            "text": o.body,
            "status": o.status,
            "finished_at": _at(o.finished_at),
            "steps": [
                {
                    "number": s.number,
                    "channel_kind": s.channel.kind,
                    "state": s.state,
                    "finished_at": _at(s.finished_at),
                }
                for s in o.steps.all()
            ],
        }
        for o in Outreach.objects.filter(customer=customer).prefetch_related("steps__channel").order_by("pk")
    ]
    return {"consents": consents, "outreach": outreaches}


def outreach_erase(sender, customer, thread, **kwargs) -> None:
    Outreach.objects.filter(customer=customer).update(body="", subject="", stop_reason="")
    OutreachStep.objects.filter(outreach__customer=customer).update(reason="")
    Consent.objects.filter(customer=customer).update(evidence="")
