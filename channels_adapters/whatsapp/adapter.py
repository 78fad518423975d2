"""WhatsApp Cloud API (Meta), one business phone number per channel.

Webhook: ``object: whatsapp_business_account``, ``entry[].changes[]`` with
``field: messages`` carrying ``messages`` (from the customer), ``statuses``
(of ours) and ``contacts`` (the sender's profile name). The sender's ``wa_id``
is a phone number: it becomes the `phone` identity WhatsApp shares with SMS and
calls. Media arrive as ids; a task fetches them (see meta/tasks.py).

A user who hides their number behind a username comes with a business-scoped
user id only (``from_user_id``, "BSUID"): it becomes a `whatsapp_bsuid`
identity, and replies go to it in the ``recipient`` field. Edits and revokes
(delete for everyone) change the original message (meta "edits" / "revoked").

Replies: ``POST /{version}/{phone_number_id}/messages``; outside the 24-hour
window only an approved template (message meta "template") can be sent.
"""

from __future__ import annotations

from django.utils.translation import gettext

from channels_adapters.base import (
    ChannelAdapter,
    Ignored,
    InboundMessage,
    MessageUpdate,
    OutboundRefused,
    ParseError,
    PermanentSendError,
    Sender,
    SendResult,
    StatusUpdate,
    entries_read,
    message_id_from_reference,
    message_reference,
)
from channels_adapters.meta import tasks as _media_tasks  # noqa: F401 - registers the media fetch
from channels_adapters.meta.graph import graph_request, plain_reason
from channels_adapters.meta.messenger import public_url
from channels_adapters.meta.selectors import (
    last_customer_message_at,
    last_customer_messages_at,
    window_refusal,
    window_rule,
)
from channels_adapters.meta.webhooks import (
    from_millis,
    load_envelope,
    verify_signature,
    verify_token_handshake,
)
from channels_adapters.whatsapp import services
from customers.models import IdentityKind

MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")
# Our delivery statuses; "played" (a voice message listened to) is at least read.
STATUS_MAP = {"sent": "sent", "delivered": "delivered", "read": "read", "played": "read", "failed": "failed"}
TEXT_LIMIT = 4096
_OUTBOUND_MEDIA = {"image": "image", "video": "video", "audio": "audio"}


def template_validate(template) -> dict:
    """The agent's template choice: {"name", "language", "parameters": [str | Graph parameter]}."""
    if not isinstance(template, dict):
        raise OutboundRefused("A WhatsApp template must be an object with a name and a language.")
    name, language = template.get("name"), template.get("language")
    parameters = template.get("parameters", [])
    if not isinstance(name, str) or not name.strip():
        raise OutboundRefused("Pick an approved WhatsApp template: its name is missing.")
    if not isinstance(language, str) or not language.strip():
        raise OutboundRefused(f"The template '{name}' needs a language code, e.g. 'en_US'.")
    if not isinstance(parameters, list) or not all(isinstance(p, str | dict) for p in parameters):
        raise OutboundRefused(f"The values for the template '{name}' must be a list of texts.")
    return {"name": name.strip(), "language": language.strip(), "parameters": parameters}


def _contacts(value: dict) -> dict:
    """The senders' profiles, found by phone (wa_id) and by business-scoped id (user_id)."""
    found = {}
    for contact in value.get("contacts") or []:
        if not isinstance(contact, dict):
            continue
        profile = contact.get("profile") if isinstance(contact.get("profile"), dict) else {}
        info = {
            "name": str(profile.get("name") or ""),
            "username": str(profile.get("username") or contact.get("username") or ""),
            "user_id": str(contact.get("user_id") or ""),
        }
        for key in ("wa_id", "user_id"):
            if contact.get(key):
                found[str(contact[key])] = info
    return found


def _sender(data: dict, contacts: dict, person: str) -> tuple[Sender, dict]:
    """Who wrote (or, for an echo, who we wrote to), and what we know of their WhatsApp ids.

    Meta sends the phone number (`from`/`to`, the wa_id) and the business-scoped
    user id (`from_user_id`/`to_user_id`, "BSUID"); a user who adopted a username
    may come with the BSUID only. The phone, when there is one, stays the identity
    (WhatsApp, SMS and calls share it); the BSUID alone is an identity of its own."""
    phone = str(data.get(person) or "").lstrip("+")
    bsuid = str(data.get(f"{person}_user_id") or "")
    info = contacts.get(phone) or contacts.get(bsuid) or {}
    # One contact is filed under both its phone and its BSUID: count people, not keys.
    people = {id(c): c for c in contacts.values()}
    if not info and len(people) == 1:
        info = next(iter(people.values()))
    bsuid = bsuid or info.get("user_id", "")
    name = info.get("name") or info.get("username") or ""
    meta: dict = {}
    if info.get("username"):
        meta["whatsapp_username"] = info["username"]
    parent = data.get(f"{person}_parent_user_id")
    if parent:
        meta["whatsapp_parent_bsuid"] = str(parent)
    if not phone:
        return Sender(IdentityKind.WHATSAPP_BSUID, bsuid, name), meta
    if bsuid:
        meta["whatsapp_bsuid"] = bsuid
        # Written now, before the message: the next message may come with the BSUID only.
        other = services.whatsapp_bsuid_link(phone="+" + phone, bsuid=bsuid, name=name)
        if other is not None:
            meta["whatsapp_bsuid_customer"] = other
    # wa_id is the full international number without '+'.
    return Sender(IdentityKind.PHONE, "+" + phone, name), meta


def _content(kind: str, content: dict, data: dict) -> tuple[str, list[dict], dict]:
    """What the agent sees of one message's content: (text, attachments, meta)."""
    text, attachments, meta = "", [], {}
    if kind == "text":
        text = str(content.get("body") or "")
    elif kind in MEDIA_TYPES:
        attachments.append(
            {
                "media_id": str(content.get("id") or ""),
                "type": "voice" if content.get("voice") else kind,
                "content_type": str(content.get("mime_type") or ""),
                "name": str(content.get("filename") or ""),
                "sha256": str(content.get("sha256") or ""),
                "url": "",
            }
        )
        text = str(content.get("caption") or "")
    elif kind == "location":
        lat, long = content.get("latitude"), content.get("longitude")
        label = ", ".join(str(p) for p in (content.get("name"), content.get("address")) if p)
        meta["location"] = {"latitude": lat, "longitude": long, "name": content.get("name")}
        text = f"📍 Location: {label + ' ' if label else ''}({lat}, {long}) https://maps.google.com/?q={lat},{long}"
    elif kind == "contacts":
        cards = data.get("contacts") or []
        meta["contacts"] = cards
        lines = []
        for card in cards:
            phones = ", ".join(p.get("phone", "") for p in card.get("phones") or [])
            lines.append(f"👤 {(card.get('name') or {}).get('formatted_name', '')} {phones}".strip())
        text = "Shared contact:\n" + "\n".join(lines)
    elif kind == "button":
        text = str(content.get("text") or "")
        meta["button_payload"] = content.get("payload")
    elif kind == "interactive":
        reply = content.get(content.get("type")) or {}
        text = str(reply.get("title") or reply.get("body") or "")
        meta["interactive"] = {"type": content.get("type"), "id": reply.get("id")}
    else:
        # "unsupported"/"unknown" (e.g. a poll) and types newer than this code:
        # the customer wrote something, so the agent sees that they did.
        errors = data.get("errors") or []
        detail = (errors[0] or {}).get("title") if errors else ""
        meta["unsupported"] = {"type": kind, "errors": errors}
        shown = f"{kind}, {detail}" if detail else kind
        text = f"(The customer sent a WhatsApp message of a type we cannot show: {shown}.)"
    return text, attachments, meta


# Where a batch leaves, on each of its messages, the customer's last message time.
_WINDOW_READ = "_customer_last_message_at"

# Interactive messages: at most 3 reply buttons, and a body of at most 1,024 characters.
INTERACTIVE_BODY_LIMIT = 1024


class WhatsAppAdapter(ChannelAdapter):
    kind = "whatsapp"
    identity_kinds = (IdentityKind.PHONE, IdentityKind.WHATSAPP_BSUID)
    credential_keys = ("phone_number_id", "access_token", "app_secret", "verify_token")
    ignored_events = (
        "fields other than messages and smb_message_echoes (message_template_status_update, history, ...)",
        "messages for another phone number of the same business account",
        "system messages (customer changed number)",
        "edits and revokes of a message we do not have (recorded with the original's id)",
        "statuses other than sent/delivered/read/played/failed (deleted, warning)",
        "webhook-level errors",
    )

    def handshake(self, channel, request):
        return verify_token_handshake(channel, request)

    def verify(self, channel, request):
        verify_signature(request, channel.credentials.get("app_secret", ""))

    # Inbound ---------------------------------------------------------------

    def parse(self, channel, event):
        payload = load_envelope(event, ("whatsapp_business_account",))
        ours = str(channel.credentials.get("phone_number_id") or "")
        # Each entry, change, message and status is read on its own: one that
        # cannot be read is reported on the event and the rest of the batch lands.
        return entries_read(payload["entry"], lambda entry: self._entry(entry, ours, channel), where="entry")

    def _entry(self, entry, ours: str, channel) -> list:
        if not isinstance(entry, dict):
            raise ParseError("Each entry must be an object")
        return entries_read(
            entry.get("changes") or [],
            lambda change: self._webhook_change(change, ours, channel),
            where="changes",
        )

    def _webhook_change(self, change, ours: str, channel) -> list:
        if not isinstance(change, dict):
            raise ParseError("Each change must be an object")
        field = str(change.get("field") or "?")
        value = change.get("value") or {}
        if field not in ("messages", "smb_message_echoes"):
            return [Ignored(field)]
        if not isinstance(value, dict):
            raise ParseError(gettext("A change's value must be an object"))
        number = str((value.get("metadata") or {}).get("phone_number_id") or "")
        if ours and number and number != ours:
            # One app webhook can serve several numbers: this one is another channel's.
            return [Ignored("messages:other_phone_number")]
        names = _contacts(value)
        items = entries_read(
            value.get("messages") or [], lambda m: self._message(m, names, channel=channel), where="messages"
        )
        # Coexistence: what the business typed in the WhatsApp Business app on its phone.
        items += entries_read(
            value.get("message_echoes") or [],
            lambda m: self._message(m, names, echo=True, channel=channel),
            where="message_echoes",
        )
        items += entries_read(value.get("statuses") or [], self._status, where="statuses")
        items.extend(Ignored(f"error:{(e or {}).get('code')}") for e in value.get("errors") or [])
        return items

    def _message(self, data: dict, names: dict, echo: bool = False, *, channel=None):
        person = "to" if echo else "from"
        who = isinstance(data, dict) and (data.get(person) or data.get(f"{person}_user_id"))
        if not isinstance(data, dict) or not data.get("id") or not who:
            raise ParseError(f"A WhatsApp message needs 'id' and '{person}' (or '{person}_user_id')")
        kind = str(data.get("type") or "")
        at = from_millis(data.get("timestamp"))
        content = data.get(kind) if isinstance(data.get(kind), dict) else {}
        if kind == "reaction":
            return MessageUpdate(
                external_id=str(content.get("message_id") or ""),
                # An empty emoji is the customer taking the reaction back.
                meta={
                    "reaction": {
                        "emoji": content.get("emoji") or None,
                        "by": "agent" if echo else "customer",
                        "at": at.isoformat() if at else None,
                    }
                },
                timestamp=at,
            )
        if kind in ("edit", "revoke") or (
            kind == "unsupported" and str(content.get("type") or "") in ("edit", "revoke")
        ):
            return self._change(data, kind, content, at, echo, channel)
        if kind == "system":
            return Ignored("system")
        sender, meta = _sender(data, names, person)
        text, attachments, shown = _content(kind, content, data)
        meta.update(shown)
        context = data.get("context") or {}
        if context.get("id"):
            meta["reply_to"] = context["id"]
        if context.get("forwarded") or context.get("frequently_forwarded"):
            meta["forwarded"] = True
        if data.get("referral"):
            meta["referral"] = data["referral"]
        return InboundMessage(
            external_id=str(data["id"]),
            sender=sender,
            text=text,
            kind="media" if attachments else "text",
            attachments=attachments,
            timestamp=at,
            meta=meta,
            echo=echo,
        )

    def _change(self, data: dict, kind: str, content: dict, at, echo: bool, channel):
        """An edit or a revoke (delete for everyone) of an earlier message: it changes that
        message, it is never a message of its own."""
        original = str(content.get("original_message_id") or "")
        if kind == "unsupported":
            kind = str(content.get("type"))
        if not original:
            # Meta documents that edits may come as "unsupported" for a while, with no
            # original id and no new text: nothing to apply, nothing to show.
            return Ignored(f"{kind} without the original message id (wamid {data.get('id')})")
        by = "agent" if echo else "customer"
        when = at.isoformat() if at else None
        if kind == "revoke":
            # The agent keeps the words (what was promised or asked still matters);
            # the timeline says the customer deleted them.
            return MessageUpdate(
                external_id=original,
                meta={"revoked": True, "revoked_at": when, "revoked_by": by, "revoke_id": str(data["id"])},
                timestamp=at,
                event="revoke",
            )
        inner = content.get("message") if isinstance(content.get("message"), dict) else {}
        inner_kind = str(inner.get("type") or "")
        inner_content = inner.get(inner_kind) if isinstance(inner.get(inner_kind), dict) else {}
        text = None  # an edit we cannot read leaves the words as they were, marked edited
        if inner_kind == "text" and inner_content.get("body"):
            text = str(inner_content["body"])
        elif inner_kind in MEDIA_TYPES:
            text = str(inner_content.get("caption") or "")  # a caption may be edited away
        return MessageUpdate(
            external_id=original,
            text=text,
            meta={"edited_at": when, "edited_by": by, "edit_id": str(data["id"])},
            timestamp=at,
            event="edit",
        )

    def _status(self, data: dict):
        if not isinstance(data, dict) or not data.get("id"):
            raise ParseError("A WhatsApp status needs 'id'")
        status = STATUS_MAP.get(str(data.get("status")))
        if status is None:
            return Ignored(f"status:{data.get('status')}")
        error = ""
        if status == "failed":
            errors = data.get("errors") or [{}]
            first = errors[0] or {}
            error = plain_reason(
                first.get("code"),
                None,
                str(first.get("message") or first.get("title") or ""),
                str((first.get("error_data") or {}).get("details") or ""),
            )
        return StatusUpdate(
            external_id=str(data["id"]),
            status=status,
            error=error,
            timestamp=from_millis(data.get("timestamp")),
            message_id=message_id_from_reference(data.get("biz_opaque_callback_data")),
        )

    # Outbound --------------------------------------------------------------

    def _window(self, channel, recipient, message=None, last_inbound_at=None) -> dict:
        if last_inbound_at is not None:
            state = window_rule(channel=channel, last_at=last_inbound_at)
            if state["open"]:
                return state  # the caller's read: the customer wrote at least that recently
        if message is not None and _WINDOW_READ in message.__dict__:
            last_at = message.__dict__[_WINDOW_READ]  # read for its whole batch (sends_prepare)
        else:
            last_at = last_customer_message_at(channel=channel, identity=recipient)
        return window_rule(channel=channel, last_at=last_at)

    def sends_prepare(self, channel, messages):
        free_form = [m for m in messages if (m.meta or {}).get("template") is None and m.identity_id]
        if not free_form:
            return
        last = last_customer_messages_at(channel=channel, identity_ids={m.identity_id for m in free_form})
        for message in free_form:
            message.__dict__[_WINDOW_READ] = last.get(message.identity_id)

    def check_outbound(self, channel, *, thread, recipient, meta=None, last_inbound_at=None):
        template = (meta or {}).get("template")
        if template is not None:
            template_validate(template)  # a template may always be sent
            return
        state = self._window(channel, recipient, last_inbound_at=last_inbound_at)
        if not state["open"]:
            raise OutboundRefused(window_refusal(channel=channel, state=state))

    def message_body(self, message, recipient) -> dict:
        body = {"messaging_product": "whatsapp", "recipient_type": "individual"}
        if recipient.kind == IdentityKind.WHATSAPP_BSUID:
            # A user known only by their business-scoped id: Cloud API's "recipient"
            # field takes it where "to" takes a phone number.
            body["recipient"] = recipient.address
        else:
            body["to"] = recipient.address.lstrip("+")
        template = (message.meta or {}).get("template")
        if template is not None:
            try:
                template = template_validate(template)
            except OutboundRefused as exc:
                raise PermanentSendError(str(exc)) from exc
            parameters = [
                p if isinstance(p, dict) else {"type": "text", "text": p} for p in template["parameters"]
            ]
            body["type"] = "template"
            body["template"] = {"name": template["name"], "language": {"code": template["language"]}}
            if parameters:
                body["template"]["components"] = [{"type": "body", "parameters": parameters}]
            return body
        text = message.body or ""
        attachments = [a for a in message.attachments or [] if a.get("url")]
        if len(attachments) == 1:
            # One media message with the text as its caption.
            only = attachments[0]
            kind = _OUTBOUND_MEDIA.get(str(only.get("content_type", "")).split("/")[0], "document")
            media = {"link": public_url(only["url"])}
            if text and kind != "audio":
                media["caption"] = text
            if kind == "document" and only.get("name"):
                media["filename"] = only["name"]
            if not (text and kind == "audio"):
                body["type"] = kind
                body[kind] = media
                return body
        buttons = [str(q)[:20] for q in (message.meta or {}).get("quick_replies") or []]
        if buttons and len(buttons) <= 3 and not attachments and 0 < len(text) <= INTERACTIVE_BODY_LIMIT:
            # Reply buttons (the bot's "did that help?"): a tap comes back as an
            # interactive button_reply whose title is the button's text.
            body["type"] = "interactive"
            body["interactive"] = {
                "type": "button",
                "body": {"text": text},
                "action": {"buttons": [{"type": "reply", "reply": {"id": q, "title": q}} for q in buttons]},
            }
            return body
        links = [public_url(a["url"]) for a in attachments]
        text = "\n".join(part for part in [text, *links] if part)
        if len(text) > TEXT_LIMIT:
            raise PermanentSendError(
                f"WhatsApp accepts {TEXT_LIMIT:,} characters per message and this one has {len(text):,}: "
                "shorten it or split it in two."
            )
        body["type"] = "text"
        body["text"] = {"body": text, "preview_url": False}
        return body

    def send(self, channel, message, recipient):
        if (message.meta or {}).get("template") is None:
            state = self._window(channel, recipient, message)
            if not state["open"]:
                # The window closed while the reply waited in the queue.
                raise PermanentSendError(window_refusal(channel=channel, state=state))
        number_id = str(channel.credentials.get("phone_number_id") or "")
        if not number_id:
            raise PermanentSendError("The channel has no phone_number_id: an admin must fill it in.")
        body = self.message_body(message, recipient)
        # Echoed in this message's status webhooks: a crash that lost Meta's
        # answer (the wamid) is settled by the first status that comes back.
        body["biz_opaque_callback_data"] = message_reference(message)
        answer = graph_request(
            "POST", f"{number_id}/messages", token=channel.credentials.get("access_token", ""), json=body
        )
        sent = answer.get("messages") or [{}]
        external_id = (sent[0] or {}).get("id") or f"helpdesk-{message.pk}"
        return SendResult(external_id=str(external_id), meta={"type": body["type"]})

    def register_webhook(self, channel):
        """Point the business account's webhooks at this channel (Meta's callback override):
        Meta checks the URL with the verify-token handshake before saving it."""
        waba_id = str(channel.credentials.get("waba_id") or "")
        if not waba_id:
            raise NotImplementedError(
                "Add the WhatsApp Business Account id as 'waba_id' in the credentials to register the "
                f"webhook from here, or set {channel.webhook_url} in the App Dashboard."
            )
        answer = graph_request(
            "POST",
            f"{waba_id}/subscribed_apps",
            token=channel.credentials.get("access_token", ""),
            json={
                "override_callback_uri": channel.webhook_url,
                "verify_token": channel.credentials.get("verify_token", ""),
            },
        )
        if answer.get("success") is not True:
            raise PermanentSendError(f"Meta did not confirm the subscription: {answer}")
        return f"WhatsApp Business Account {waba_id} now sends its webhooks to {channel.webhook_url}."
