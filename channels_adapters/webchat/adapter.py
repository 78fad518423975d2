"""The website chat: visitors write from our frame on the company's site, agents answer here.

There is no provider: a visitor's message comes through the frame's API or
socket (services.visitor_message_send) straight into the shared inbound path,
so the webhook URL of a web-chat channel refuses everything. An agent's reply
is "sent" by pushing it to the visitor's sockets; it is stored either way,
and a visitor who was away reads it when they come back (or by email: the
inbox offers the company's email channel once they are gone).
"""

from __future__ import annotations

import secrets

from django.dispatch import receiver

from channels_adapters.base import ChannelAdapter, ParseError, SendResult, SignatureError
from channels_adapters.webchat.presence import visitor_present
from channels_adapters.webchat.selectors import case_json, message_json
from channels_adapters.webchat.tokens import Visitor, visitor_from_address
from conversations import realtime
from conversations.models import Direction
from conversations.signals import message_created
from customers.models import IdentityKind


def visitor_push(visitor: Visitor, event: str, data: dict) -> None:
    realtime.publish_to_groups(event, data, [visitor.group])


class WebchatAdapter(ChannelAdapter):
    kind = "webchat"
    identity_kinds = (IdentityKind.WEBCHAT,)
    credential_keys = ("identity_secret",)

    def verify(self, channel, request):
        raise SignatureError("web chat messages come from the chat widget, not a webhook")

    def parse(self, channel, event):
        raise ParseError("web chat channels receive no webhooks")

    def reaches(self, channel, identity) -> bool:
        # A visitor of one site's chat is not reachable through another site's.
        return identity.address.startswith(channel.key + ":")

    def recipient_present(self, channel, identity) -> bool | None:
        return visitor_present(address=identity.address)

    def customer_details(self, channel, *, identity, meta):
        from channels_adapters.webchat.selectors import visitor_details

        return visitor_details(identity=identity, meta=meta)

    def settings_errors(self, settings):
        from channels_adapters.webchat.config import widget_settings_errors

        return widget_settings_errors(settings)

    def credentials_complete(self, credentials):
        # Only the host site's server needs it (to sign its user ids): ours to make.
        if not credentials.get("identity_secret"):
            return {**credentials, "identity_secret": secrets.token_urlsafe(32)}
        return credentials

    def send(self, channel, message, recipient):
        visitor = visitor_from_address(recipient.address)
        if visitor is not None:
            visitor_push(visitor, "message.created", {"message": message_json(message, visitor=visitor)})
        return SendResult(external_id=f"webchat-{message.pk}")

    def typing(self, channel, *, recipient, name: str, typing: bool = True) -> None:
        visitor = visitor_from_address(recipient.address)
        if visitor is not None:
            visitor_push(visitor, "agent.typing", {"name": name, "typing": typing})

    def seen(self, channel, *, recipient, up_to: int) -> None:
        visitor = visitor_from_address(recipient.address)
        if visitor is not None:
            visitor_push(visitor, "seen", {"up_to": up_to})


@receiver(message_created)
def _visitor_message_echo(sender, message, **kwargs):
    """A visitor's own message, once committed, goes to all their tabs (the sending one
    learns its id and the case number from it)."""
    cache = message._state.fields_cache
    channel, identity = cache.get("channel"), cache.get("identity")
    if message.direction != Direction.IN or channel is None or identity is None:
        return
    if channel.kind != "webchat":
        return
    visitor = visitor_from_address(identity.address)
    if visitor is None:
        return
    case = cache.get("case")
    visitor_push(
        visitor,
        "message.created",
        {"message": message_json(message, visitor=visitor), "case": case_json(case) if case else None},
    )
