"""The outreach tests' cast: a customer with a phone and an email, and three real channels
(WhatsApp Cloud and Twilio SMS against the local provider server, email against a local SMTP server)."""

from __future__ import annotations

import json

from conversations import delivery
from conversations.models import DeliveryStatus, Direction, Message
from tests.channels_adapters.meta_support import meta_headers, whatsapp_channel
from tests.channels_adapters.twilio_support import OUR_NUMBER, message_resource, twilio_channel, twilio_post
from tests.factories import CustomerFactory, IdentityFactory
from tests.provider_server import Reply
from tests.webhooks import check_webhook

PHONE = "+34600111222"
EMAIL = "ana@example.com"
TEMPLATE = {"name": "order_shipped", "language": "es", "parameters": ["Ana"]}
GRAPH_PREFIX = "/v23.0/"
TWILIO_PREFIX = "/2010-04-01/"


def customer_with_phone_and_email(**kwargs):
    customer = CustomerFactory(name="Ana Ruiz", **kwargs)
    IdentityFactory(customer=customer, kind="phone", address=PHONE)
    IdentityFactory(customer=customer, kind="email", address=EMAIL)
    return customer


def channels(smtp_port: int):
    from tests.channels_adapters.email_support import email_channel

    return {
        "whatsapp": whatsapp_channel(),
        "sms": twilio_channel("sms"),
        "email": email_channel(smtp_port=smtp_port),
    }


def provider_answers(provider, *, wamid="wamid.OUT1", sid="SMout1"):
    provider.script(Reply(200, {"messages": [{"id": wamid}]}), path=GRAPH_PREFIX)
    provider.script(Reply(201, message_resource(sid, to=PHONE, from_=OUR_NUMBER)), path=TWILIO_PREFIX)


def sends(provider, prefix: str) -> list:
    return [r for r in provider.requests if r.path.startswith(prefix) and r.method == "POST"]


def deliver_queued() -> int:
    """What the core's delivery worker does with every queued outbound message (called in-process)."""
    done = 0
    for pk in Message.objects.filter(direction=Direction.OUT, status=DeliveryStatus.QUEUED).values_list(
        "pk", flat=True
    ):
        delivery.message_deliver(message_id=pk)
        done += 1
    return done


def whatsapp_status(client, channel, *, wamid: str, status: str, errors: list | None = None):
    entry = {"id": wamid, "status": status, "timestamp": "1764580000", "recipient_id": PHONE.lstrip("+")}
    if errors:
        entry["errors"] = errors
    body = json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "102290129340398",
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {
                                    "display_phone_number": "15550783881",
                                    "phone_number_id": channel.credentials["phone_number_id"],
                                },
                                "statuses": [entry],
                            },
                        }
                    ],
                }
            ],
        }
    ).encode()
    return check_webhook(client, channel, body, headers=meta_headers(body))


def sms_status(client, channel, *, message, sid: str, status: str, error_code: str = "", phone: str = PHONE):
    params = {
        "SmsSid": sid,
        "SmsStatus": status,
        "MessageStatus": status,
        "To": phone,
        "MessageSid": sid,
        "AccountSid": channel.credentials["account_sid"],
        "From": OUR_NUMBER,
        "ApiVersion": "2010-04-01",
    }
    if error_code:
        params["ErrorCode"] = error_code
    return twilio_post(client, channel, params, query={"event": "status", "message": message.pk})


def sms_inbound(client, channel, *, body: str, sid: str = "SMin1", phone: str = PHONE):
    params = {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": channel.credentials["account_sid"],
        "From": phone,
        "To": OUR_NUMBER,
        "Body": body,
        "NumMedia": "0",
        "ApiVersion": "2010-04-01",
    }
    return twilio_post(client, channel, params)
