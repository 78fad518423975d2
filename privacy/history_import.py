"""Past conversations from Chatwoot or Zendesk onto the customers' threads.

Formats (docs/privacy.md "Past conversations"), as their APIs export them:
- Zendesk: {"tickets": [ticket + "comments": [ticket comments]], "users": [...]}: the
  Tickets API with each ticket's Ticket Comments API answer and the side-loaded users.
  The requester is the customer; a comment by them is inbound, by anyone else an
  agent's reply, and `public: false` an internal note.
- Chatwoot: a conversations list ({"data": {"payload": [...]}}, or the list itself),
  each conversation with its "messages" (the Messages API): message_type 0 incoming,
  1 outgoing, 2 activity (skipped), 3 template (an automatic message); `private` is a note.

Imported messages join the customer's thread with no case and no channel, marked
meta["imported"] = {"source", "conversation", ...}: the KPIs are computed on cases, so
history never counts in the live KPIs. External ids ("zendesk:<ticket>:<comment>")
make a re-run add nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from conversations.models import Author, Direction, Message, MessageKind, Thread
from customers.identity import identity_normalize
from customers.models import Identity
from customers.services import identity_add, identity_resolve

SOURCES = ("zendesk", "chatwoot")


def _when(value) -> datetime | None:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, tz=UTC)
    if isinstance(value, str):
        return parse_datetime(value)
    return None


def _zendesk(data: dict):
    users = {u["id"]: u for u in data.get("users", [])}
    for ticket in data.get("tickets", []):
        requester = users.get(ticket.get("requester_id"), {})
        messages = []
        for comment in ticket.get("comments", []):
            by_customer = comment.get("author_id") == ticket.get("requester_id")
            messages.append(
                {
                    "id": comment["id"],
                    "body": comment.get("plain_body") or comment.get("body") or "",
                    "at": _when(comment.get("created_at")),
                    "direction": Direction.IN if by_customer else Direction.OUT,
                    "author": Author.CUSTOMER if by_customer else Author.AGENT,
                    "kind": MessageKind.TEXT if comment.get("public", True) else MessageKind.NOTE,
                    "author_name": users.get(comment.get("author_id"), {}).get("name", ""),
                }
            )
        yield {
            "id": ticket["id"],
            "subject": ticket.get("subject", ""),
            "status": ticket.get("status", ""),
            "contact": {
                "name": requester.get("name") or "",
                "email": requester.get("email"),
                "phone": requester.get("phone"),
            },
            "messages": messages,
        }


def _chatwoot(data):
    conversations = data
    if isinstance(data, dict):
        conversations = (data.get("data") or {}).get("payload", data.get("payload", []))
    for conversation in conversations:
        contact = (conversation.get("meta") or {}).get("sender") or {}
        messages = []
        for message in conversation.get("messages", []):
            kind_code = message.get("message_type")
            if kind_code == 2:  # activity: "assigned to...", Chatwoot's own bookkeeping
                continue
            incoming = kind_code == 0
            messages.append(
                {
                    "id": message["id"],
                    "body": message.get("content") or "",
                    "at": _when(message.get("created_at")),
                    "direction": Direction.IN if incoming else Direction.OUT,
                    "author": Author.CUSTOMER
                    if incoming
                    else (Author.BOT if kind_code == 3 else Author.AGENT),
                    "kind": MessageKind.NOTE if message.get("private") else MessageKind.TEXT,
                    "author_name": (message.get("sender") or {}).get("name", ""),
                }
            )
        yield {
            "id": conversation["id"],
            "subject": "",
            "status": conversation.get("status", ""),
            "contact": {
                "name": contact.get("name") or "",
                "email": contact.get("email"),
                "phone": contact.get("phone_number"),
            },
            "messages": messages,
        }


def conversations_import(*, source: str, data, user=None) -> dict:
    """Import every conversation of an export; returns the report (per conversation refusals)."""
    if source not in SOURCES:
        raise ValidationError(_("Unknown source '%(source)s': zendesk or chatwoot.") % {"source": source})
    report = {"conversations": 0, "messages": 0, "already_imported": 0, "refused": []}
    for conversation in (_zendesk if source == "zendesk" else _chatwoot)(data):
        try:
            created, existing = _conversation_import(source=source, conversation=conversation)
        except ValidationError as exc:
            report["refused"].append({"conversation": conversation["id"], "reason": " ".join(exc.messages)})
            continue
        report["conversations"] += 1
        report["messages"] += created
        report["already_imported"] += existing
    from audit.models import AuditAction
    from audit.services import audit_record

    audit_record(
        action=AuditAction.CONVERSATIONS_IMPORTED,
        actor=user,
        target_type="thread",
        details={
            "source": source,
            **{k: v for k, v in report.items() if k != "refused"},
            "refused": len(report["refused"]),
        },
    )
    return report


def _conversation_import(*, source: str, conversation: dict) -> tuple[int, int]:
    contact = conversation["contact"]
    address = [("email", contact.get("email")), ("phone", contact.get("phone"))]
    address = [(kind, value) for kind, value in address if value]
    if not address:
        raise ValidationError(_("The contact has no email or phone: nobody to put the conversation on."))
    bad = [m["id"] for m in conversation["messages"] if m["at"] is None]
    if bad:
        raise ValidationError(_("Messages %(ids)s have no valid created_at.") % {"ids": bad})
    normalized = [(kind, identity_normalize(kind, value)) for kind, value in address]
    known = [i for kind, value in normalized for i in Identity.objects.filter(kind=kind, address=value)]
    owners = {i.customer_id for i in known}
    if len(owners) > 1:
        raise ValidationError(
            _("The contact's email and phone belong to two customers (#%(a)s, #%(b)s): merge them first.")
            % {"a": min(owners), "b": max(owners)}
        )
    with transaction.atomic():
        # The contact's first known address finds the customer; the others are added to them.
        identity = (
            known[0]
            if known
            else identity_resolve(kind=normalized[0][0], address=normalized[0][1], name=contact["name"])
        )
        for kind, value in normalized:
            identity_add(customer=identity.customer, kind=kind, address=value)
        thread = Thread.objects.select_for_update().get(customer_id=identity.customer_id)
        wanted = {f"{source}:{conversation['id']}:{m['id']}": m for m in conversation["messages"]}
        existing = set(
            Message.objects.filter(thread=thread, channel=None, external_id__in=list(wanted)).values_list(
                "external_id", flat=True
            )
        )
        rows = [
            Message(
                thread=thread,
                case=None,
                channel=None,
                identity=identity if m["direction"] == Direction.IN else None,
                direction=m["direction"],
                kind=m["kind"],
                author=m["author"],
                body=m["body"],
                created_at=m["at"],
                external_id=external_id,
                meta={
                    "imported": {
                        "source": source,
                        "conversation": conversation["id"],
                        "subject": conversation["subject"],
                        "status": conversation["status"],
                        "author_name": m["author_name"],
                    }
                },
            )
            for external_id, m in wanted.items()
            if external_id not in existing
        ]
        Message.objects.bulk_create(rows)
        latest = Message.objects.filter(thread=thread).aggregate(last=Max("created_at"))["last"]
        Thread.objects.filter(pk=thread.pk).update(last_message_at=latest)
    return len(rows), len(existing)
