"""Random but correctly signed webhooks, for every channel kind in the registry.

Each body is shaped like the provider's payload, with any value replaced now and
then by something a provider might really send (NUL bytes, lone surrogates,
names and ids longer than our columns, NaN, timestamps out of range, the wrong
type, bytes that are not UTF-8). Whatever arrives:

- the webhook never answers 5xx, and a signed body is never refused;
- the body is stored as an InboundEvent, byte for byte;
- processing ends it processed, or failed with a reason: never pending;
- nothing is half-written: no customer without a message on their thread.

HELPDESK_FUZZ_EXAMPLES raises the number of examples per kind (default 25).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from email.utils import formataddr
from urllib.parse import urlencode

import pytest
from django.db import transaction
from django.http import QueryDict
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from channels_adapters.base import hmac_sha256_hex
from channels_adapters.models import InboundEvent
from channels_adapters.registry import ADAPTERS
from channels_adapters.services import inbound_event_process
from channels_adapters.twilio.common import public_base_url
from customers.models import Customer
from tests.channels_adapters.email_support import SUPPORT_ADDRESS, email_channel, mailgun_form
from tests.channels_adapters.meta_support import (
    APP_SECRET,
    CONSUMER_SECRET,
    facebook_channel,
    instagram_channel,
    twitter_channel,
    whatsapp_channel,
)
from tests.channels_adapters.twilio_support import sign, twilio_channel
from tests.factories import ChannelFactory

pytestmark = pytest.mark.django_db

FUZZ = hypothesis_settings(
    max_examples=int(os.environ.get("HELPDESK_FUZZ_EXAMPLES", "25")),
    deadline=None,
    database=None,  # no .hypothesis folder in the work tree; failures print their example
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # one channel and client for all examples is intended
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

# Values providers have been seen to send, or that sit on our columns' edges.
NASTY = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "x" * 201,
    "y" * 256,
    "z" * 1000,
    "NaN",
    "anonymous",
    "+14155550100",
    "14155550100",
    "jane@example.com",
    "<b>hi</b>",
    "😀",
    "\u202e",
    "\r\n",
]
NASTY_JSON = [*NASTY, "\ud800", "\udfff lone"]

form_text = st.one_of(st.text(max_size=20), st.sampled_from(NASTY))
json_text = st.one_of(st.text(max_size=20), st.sampled_from(NASTY_JSON))
scalar = st.one_of(
    json_text,
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
)
junk = st.recursive(
    scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(json_text, inner, max_size=3)),
    max_leaves=6,
)
timestamps = st.one_of(
    st.integers(min_value=1_500_000_000, max_value=1_800_000_000),
    st.integers(min_value=1_500_000_000_000, max_value=1_800_000_000_000),
    st.sampled_from([0, -1, 1e300, -1e20, 2**64, "NaN", "yesterday", "", "1700000000"]),
    st.floats(allow_nan=True, allow_infinity=True),
)


def maybe(strategy):
    """Mostly the right shape; one time in eight, anything at all."""
    return st.integers(0, 7).flatmap(lambda n: junk if n == 0 else strategy)


def obj(required: dict, optional: dict | None = None):
    return st.fixed_dictionaries(
        {k: maybe(v) for k, v in required.items()},
        optional={k: maybe(v) for k, v in (optional or {}).items()},
    )


# A small pool first, so that webhooks of one example often share an id (a retry, a reused id).
ids = st.one_of(
    st.sampled_from(["1", "2", "mid.1"]),
    st.text(min_size=1, max_size=12),
    st.sampled_from(NASTY_JSON),
    st.integers(0, 10**20),
)
phones = st.sampled_from(
    ["+14155550123", "14155550124", "+447700900123", "+34600000000", "abc", "", "anonymous"]
)


# Bodies per kind: (bytes, content type, headers, path suffix) from a drawn payload ----------


def json_bytes(payload) -> bytes:
    # NaN and Infinity are what a provider's sloppy encoder writes; json.loads reads them.
    return json.dumps(payload, allow_nan=True).encode()


def api_request(channel, payload):
    body = json_bytes(payload)
    return body, "application/json", {"X-Signature": "sha256=" + hmac_sha256_hex("s3cret-api-key", body)}, ""


def meta_request(channel, payload):
    body = json_bytes(payload)
    signature = "sha256=" + hmac_sha256_hex(APP_SECRET, body)
    return body, "application/json", {"X-Hub-Signature-256": signature}, ""


def twitter_request(channel, payload):
    body = json_bytes(payload)
    digest = base64.b64encode(hmac.new(CONSUMER_SECRET.encode(), body, hashlib.sha256).digest()).decode()
    return body, "application/json", {"x-twitter-webhooks-signature": "sha256=" + digest}, ""


def telegram_request(channel, payload):
    return json_bytes(payload), "application/json", {"X-Telegram-Bot-Api-Secret-Token": "tg-fuzz-secret"}, ""


def twilio_request(channel, drawn):
    params, query, tail = drawn
    body = urlencode(params).encode() + tail
    suffix = f"?{urlencode(query)}" if query else ""
    url = public_base_url() + channel.webhook_path + suffix
    # Signed over the form as Django reads it (bytes that are not UTF-8 read as Latin-1).
    return (
        body,
        "application/x-www-form-urlencoded",
        {"X-Twilio-Signature": sign(url, QueryDict(body))},
        suffix,
    )


def email_request(channel, drawn):
    if isinstance(drawn, tuple):
        # Mailgun signs its timestamp and token, not the body: any form carrying a valid
        # signature is signed, even one cut short in the middle of the message.
        raw, cut = drawn
        body, content_type = mailgun_form(raw)
        if cut:  # inside the message part, after the signed fields
            start = body.index(b'name="body-mime"')
            body = body[: start + (len(body) - start) // 2]
        return body, content_type, {}, ""
    key = channel.credentials["signing_key"]
    return drawn, "message/rfc822", {"X-Signature": "sha256=" + hmac_sha256_hex(key, drawn)}, ""


api_message = obj(
    {
        "external_id": ids,
        "from": st.one_of(obj({"email": json_text}), obj({"phone": phones}), obj({"id": ids})),
    },
    {
        "text": json_text,
        "timestamp": timestamps,
        "type": st.sampled_from(["message", "status", "typing"]),
        "status": st.sampled_from(["sent", "delivered", "read", "failed", "lost"]),
        "error": json_text,
        "attachments": st.lists(
            obj({"url": json_text}, {"name": json_text, "content_type": json_text}), max_size=2
        ),
    },
)
api_payloads = st.one_of(api_message, st.fixed_dictionaries({"messages": st.lists(api_message, max_size=4)}))

messenger_message = obj(
    {"mid": ids},
    {
        "text": json_text,
        "is_echo": st.booleans(),
        "is_deleted": st.booleans(),
        "attachments": st.lists(
            obj(
                {"type": st.sampled_from(["image", "file", "location", "fallback", "template"])},
                {"payload": junk},
            ),
            max_size=2,
        ),
        "reply_to": obj({"mid": ids}),
        "quick_reply": obj({"payload": json_text}),
    },
)
messenger_event = st.builds(
    lambda base, extra: {**base, **extra},
    obj({"sender": obj({"id": ids}), "recipient": obj({"id": ids}), "timestamp": timestamps}),
    st.one_of(
        st.fixed_dictionaries({"message": maybe(messenger_message)}),
        st.fixed_dictionaries({"delivery": obj({}, {"watermark": timestamps, "mids": st.lists(ids)})}),
        st.fixed_dictionaries({"read": obj({}, {"watermark": timestamps, "mid": ids})}),
        st.fixed_dictionaries({"reaction": obj({"mid": ids}, {"emoji": json_text, "action": json_text})}),
        st.fixed_dictionaries({"postback": obj({}, {"mid": ids, "title": json_text, "payload": json_text})}),
        st.fixed_dictionaries({"message_edit": obj({"mid": ids}, {"text": json_text})}),
        st.dictionaries(json_text, junk, max_size=1),
    ),
)


def meta_payloads(object_name: str):
    entry = obj({"id": ids, "time": timestamps}, {"messaging": st.lists(maybe(messenger_event), max_size=3)})
    return st.fixed_dictionaries(
        {
            "object": st.sampled_from([object_name] * 7 + ["page", "user"]),
            "entry": st.lists(maybe(entry), max_size=3),
        }
    )


WA_TYPES = [
    "text",
    "image",
    "voice",
    "location",
    "contacts",
    "button",
    "interactive",
    "reaction",
    "system",
    "poll",
]
whatsapp_message = st.builds(
    lambda base, kind, content: {**base, "type": kind, kind: content},
    obj(
        {"from": phones, "id": ids, "timestamp": timestamps},
        {"context": obj({}, {"id": ids, "forwarded": st.booleans()})},
    ),
    st.sampled_from(WA_TYPES),
    obj(
        {},
        {
            "body": json_text,
            "id": ids,
            "caption": json_text,
            "mime_type": json_text,
            "latitude": scalar,
            "longitude": scalar,
            "emoji": json_text,
            "message_id": ids,
            "text": json_text,
            "payload": json_text,
        },
    ),
)
whatsapp_status = obj(
    {"id": ids, "status": st.sampled_from(["sent", "delivered", "read", "played", "failed", "deleted"])},
    {
        "timestamp": timestamps,
        "recipient_id": phones,
        "errors": st.lists(obj({"code": scalar}, {"title": json_text})),
    },
)
whatsapp_value = obj(
    {
        "messaging_product": st.just("whatsapp"),
        "metadata": obj({"phone_number_id": st.just("106540352242922")}),
    },
    {
        "contacts": st.lists(obj({"wa_id": phones}, {"profile": obj({"name": json_text})}), max_size=2),
        "messages": st.lists(maybe(whatsapp_message), max_size=3),
        "statuses": st.lists(maybe(whatsapp_status), max_size=2),
    },
)
whatsapp_payloads = st.fixed_dictionaries(
    {
        "object": st.just("whatsapp_business_account"),
        "entry": st.lists(
            obj(
                {"id": ids},
                {
                    "changes": st.lists(
                        obj({"field": st.just("messages"), "value": whatsapp_value}), max_size=2
                    )
                },
            ),
            max_size=2,
        ),
    }
)

twitter_dm = obj(
    {"type": st.sampled_from(["message_create", "other"]), "id": ids, "created_timestamp": timestamps},
    {
        "message_create": obj(
            {"sender_id": ids, "target": obj({"recipient_id": ids})},
            {"message_data": obj({"text": json_text}, {"attachment": junk, "entities": junk})},
        )
    },
)
twitter_payloads = obj(
    {"for_user_id": st.sampled_from(["3001969357", "3001969357", "42"])},
    {
        "direct_message_events": st.lists(maybe(twitter_dm), max_size=3),
        "direct_message_mark_read_events": st.lists(junk, max_size=2),
        "users": st.dictionaries(
            ids.map(str), obj({"name": json_text, "screen_name": json_text}), max_size=2
        ),
        "tweet_create_events": junk,
    },
)

telegram_user = obj(
    {"id": st.one_of(st.integers(1, 10**12), ids)},
    {"first_name": json_text, "last_name": json_text, "username": json_text},
)
telegram_message = obj(
    {
        "message_id": st.one_of(st.integers(1, 10**9), ids),
        "from": telegram_user,
        "chat": obj({"id": st.integers(1, 10**12), "type": st.sampled_from(["private", "private", "group"])}),
        "date": timestamps,
    },
    {
        "text": json_text,
        "caption": json_text,
        "photo": st.lists(
            obj({"file_id": ids}, {"file_size": scalar, "width": scalar, "height": scalar}), max_size=2
        ),
        "document": obj({"file_id": ids}, {"file_name": json_text, "mime_type": json_text}),
        "location": obj({"latitude": scalar, "longitude": scalar}),
        "contact": obj({"phone_number": phones}, {"user_id": scalar, "first_name": json_text}),
        "sticker": obj({}, {"emoji": json_text}),
    },
)
telegram_payloads = st.builds(
    lambda update_id, key, message: {"update_id": update_id, key: message},
    maybe(st.integers(1, 10**9)),
    st.sampled_from(["message", "message", "edited_message", "callback_query"]),
    maybe(telegram_message),
)

not_utf8 = st.sampled_from([b"", b"", b"", b"&Extra=%FF", b"&Extra=\xff\xfe", b"&\xc3("])
sms_payloads = st.tuples(
    st.fixed_dictionaries(
        {"From": phones},
        optional={
            "MessageSid": form_text,
            "To": st.just("+14155550100"),
            "Body": form_text,
            "NumMedia": st.sampled_from(["0", "1", "2", "x", ""]),
            "MediaUrl0": form_text,
            "MediaContentType0": form_text,
            "ProfileName": form_text,
            "MessageStatus": st.sampled_from(
                ["received", "sent", "delivered", "read", "undelivered", "failed", "odd"]
            ),
            "ErrorCode": form_text,
            "Latitude": form_text,
            "Longitude": form_text,
        },
    ),
    st.one_of(st.none(), st.just({"event": "status"})),
    not_utf8,
)
VOICE_EVENTS = [None, None, "dial", "whisper", "recorded", "recording", "transcription", "call-status", "odd"]
voice_payloads = st.tuples(
    st.fixed_dictionaries(
        {"CallSid": form_text},
        optional={
            "From": phones,
            "To": st.just("+14155550100"),
            "CallerName": form_text,
            "Direction": st.sampled_from(["inbound", "inbound", "outbound-api"]),
            "CallStatus": st.sampled_from(
                ["ringing", "completed", "busy", "no-answer", "canceled", "failed", "odd"]
            ),
            "CallDuration": form_text,
            "DialCallStatus": st.sampled_from(["completed", "no-answer", "busy"]),
            "DialCallDuration": form_text,
            "RecordingUrl": form_text,
            "RecordingStatus": st.sampled_from(["completed", "failed"]),
            "RecordingDuration": form_text,
            "TranscriptionText": form_text,
            "TranscriptionStatus": st.sampled_from(["completed", "failed"]),
        },
    ),
    st.sampled_from(VOICE_EVENTS).flatmap(
        lambda name: (
            st.just(None)
            if name is None
            else st.fixed_dictionaries({"event": st.just(name)}, optional={"caller": phones})
        )
    ),
    not_utf8,
)

header_text = st.text(
    alphabet=st.characters(exclude_characters="\r\n", exclude_categories=["Cs"]), max_size=40
)
mime_messages = st.builds(
    lambda name, address, subject, mid, body, extra: (
        f"From: {formataddr((name, address))}\r\nTo: {SUPPORT_ADDRESS}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{mid}>\r\n{extra}MIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}"
    ).encode("utf-8", "surrogateescape"),
    header_text,
    st.one_of(st.emails(), st.sampled_from(["", "nobody", "a@b", "x" * 330 + "@example.com"])),
    header_text,
    header_text,
    st.text(max_size=200),
    st.sampled_from(
        ["", "Auto-Submitted: auto-replied\r\n", "In-Reply-To: <nowhere@x>\r\n", "X-Odd: \x00\r\n"]
    ),
)
email_payloads = st.one_of(mime_messages, st.binary(max_size=200), st.tuples(mime_messages, st.booleans()))

# kind -> (channel factory, payload strategy, request builder)
KINDS = {
    "api": (ChannelFactory, api_payloads, api_request),
    "facebook": (facebook_channel, meta_payloads("page"), meta_request),
    "instagram": (instagram_channel, meta_payloads("instagram"), meta_request),
    "whatsapp": (whatsapp_channel, whatsapp_payloads, meta_request),
    "twitter": (twitter_channel, twitter_payloads, twitter_request),
    "sms": (lambda: twilio_channel("sms"), sms_payloads, twilio_request),
    "whatsapp_twilio": (lambda: twilio_channel("whatsapp_twilio"), sms_payloads, twilio_request),
    "voice": (lambda: twilio_channel("voice"), voice_payloads, twilio_request),
    "telegram": (
        lambda: ChannelFactory(
            kind="telegram", credentials={"bot_token": "1:fuzz", "secret_token": "tg-fuzz-secret"}
        ),
        telegram_payloads,
        telegram_request,
    ),
    "email": (email_channel, email_payloads, email_request),
}


# Kinds that receive no webhook: their own input is fuzzed where it arrives
# (the website chat's visitor API: test_webchat.py).
NO_WEBHOOK = {"webchat"}


def test_every_registered_kind_is_fuzzed():
    assert set(KINDS) == set(ADAPTERS) - NO_WEBHOOK


def deliver_and_check(client, channel, request):
    body, content_type, headers, suffix = request
    before = InboundEvent.objects.count()
    response = client.generic(
        "POST", channel.webhook_path + suffix, data=body, content_type=content_type, headers=headers
    )
    assert response.status_code == 200, (response.status_code, response.content[:300])
    assert InboundEvent.objects.count() == before + 1, "an accepted body was not stored"
    event = InboundEvent.objects.order_by("-pk").first()
    assert event.body_bytes == body
    event = inbound_event_process(event_id=event.pk)
    assert event.status in (InboundEvent.Status.PROCESSED, InboundEvent.Status.FAILED)
    if event.status == InboundEvent.Status.FAILED:
        assert event.error.strip(), "a failed event must say why"
        assert event.summary.get("failed"), "a failed event must name what failed"
    orphans = list(Customer.objects.filter(thread__messages__isnull=True).values_list("pk", "name"))
    assert orphans == [], f"customers without a message: {orphans}"


@pytest.fixture
def fuzz_setup(request, settings, provider):
    # Media fetches and other provider calls made after commit go to the local server.
    settings.GRAPH_API_BASE_URL = provider.url
    settings.TWILIO_API_BASE_URL = provider.url
    settings.TELEGRAM_API_BASE_URL = provider.url
    settings.X_API_BASE_URL = provider.url
    kind = request.param
    make_channel, payloads, build = KINDS[kind]
    return make_channel(), payloads, build


@pytest.mark.parametrize("fuzz_setup", sorted(KINDS), indirect=True)
def test_signed_random_bodies_never_5xx_never_half_written(client, fuzz_setup):
    channel, payloads, build = fuzz_setup

    @FUZZ
    @given(batch=st.lists(payloads, min_size=1, max_size=3))
    def run(batch):
        # Each example on a clean slate (the channel stays), so a failure is its own
        # example's; a few webhooks per example meet each other (a retry, an id reused).
        with transaction.atomic():
            for payload in batch:
                deliver_and_check(client, channel, build(channel, payload))
            transaction.set_rollback(True)

    run()
