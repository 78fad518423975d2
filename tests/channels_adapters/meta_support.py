"""Shared helpers for the Meta and X adapter tests: channels, real signatures, Graph replies."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import timedelta

from django.utils import timezone

from channels_adapters.base import Sender, hmac_sha256_hex
from conversations.services import receive_inbound
from tests.factories import ChannelFactory
from tests.webhooks import check_webhook, fixture_bytes

APP_SECRET = "meta-app-secret-0123456789"
VERIFY_TOKEN = "verify-me-please"
CONSUMER_SECRET = "x-consumer-secret-0123456789"


def facebook_channel(**credentials):
    return ChannelFactory(
        kind="facebook",
        name="Acme on Messenger",
        credentials={
            "page_id": "112233445566778",
            "page_access_token": "EAAG-page-token",
            "app_secret": APP_SECRET,
            "verify_token": VERIFY_TOKEN,
            **credentials,
        },
    )


def instagram_channel(**credentials):
    return ChannelFactory(
        kind="instagram",
        name="Acme on Instagram",
        credentials={
            "ig_account_id": "17841400000000001",
            "access_token": "EAAG-ig-token",
            "app_secret": APP_SECRET,
            "verify_token": VERIFY_TOKEN,
            **credentials,
        },
    )


def whatsapp_channel(**credentials):
    return ChannelFactory(
        kind="whatsapp",
        name="Acme on WhatsApp",
        credentials={
            "phone_number_id": "106540352242922",
            "access_token": "EAAG-wa-token",
            "app_secret": APP_SECRET,
            "verify_token": VERIFY_TOKEN,
            **credentials,
        },
    )


def twitter_channel(**credentials):
    return ChannelFactory(
        kind="twitter",
        name="Acme on X",
        credentials={
            "consumer_key": "x-consumer-key",
            "consumer_secret": CONSUMER_SECRET,
            "access_token": "3001969357-x-access-token",
            "access_token_secret": "x-access-token-secret",
            "user_id": "3001969357",
            **credentials,
        },
    )


def meta_headers(body: bytes, secret: str = APP_SECRET) -> dict:
    return {"X-Hub-Signature-256": "sha256=" + hmac_sha256_hex(secret, body)}


def x_headers(body: bytes, secret: str = CONSUMER_SECRET) -> dict:
    digest = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return {"x-twitter-webhooks-signature": "sha256=" + digest}


def deliver_meta(client, channel, name: str, **kwargs):
    body = fixture_bytes(channel.kind, name)
    return check_webhook(client, channel, body, headers=meta_headers(body), **kwargs)


def deliver_x(client, channel, name: str, **kwargs):
    body = fixture_bytes("twitter", name)
    return check_webhook(client, channel, body, headers=x_headers(body), **kwargs)


def customer_wrote(channel, kind: str, address: str, *, hours_ago: float, external_id: str = "in-1"):
    """The customer's last message on the channel, `hours_ago` by the provider's clock."""
    return receive_inbound(
        channel=channel,
        sender=Sender(kind, address),
        external_id=external_id,
        text="Hello?",
        timestamp=timezone.now() - timedelta(hours=hours_ago),
    ).message


def graph_error(code: int, message: str, *, subcode: int | None = None, kind: str = "OAuthException") -> dict:
    error = {"message": message, "type": kind, "code": code, "fbtrace_id": "AbCdEf123"}
    if subcode:
        error["error_subcode"] = subcode
    return {"error": error}
