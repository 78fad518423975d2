"""Commitments in the demo data (called once by customers' seed_demo command)."""

from datetime import timedelta

from django.utils import timezone

from commitments.services import commitment_create
from conversations.models import Message


def demo_commitments_seed(*, users) -> int:
    """Ana's replacement jar (promised on Facebook, now past due, while she writes on
    WhatsApp) and Bo's refund: what the agent who answers next must see first."""
    made = 0
    for body, text, username, days in (
        (
            "Thanks. A replacement jar ships today; you'll get it within 5 days.",
            "Replacement jar for order #4411, delivered within 5 days",
            "agent1",
            5,
        ),
        (
            "You're right, the duplicate is refunded; 3-5 business days.",
            "Duplicate charge of invoice 2026-118 refunded (3-5 business days)",
            "agent2",
            7,
        ),
    ):
        message = Message.objects.filter(body=body).order_by("pk").first()
        if message is None:
            continue
        commitment_create(
            message=message,
            text=text,
            due_on=timezone.localdate(message.created_at) + timedelta(days=days),
            by=users[username],
            at=message.created_at,
        )
        made += 1
    return made
