"""Helpers for the Twilio channels' tests: signed form posts and a REST API that answers like Twilio.

Fixtures keep Twilio's form fields as JSON for readability; `twilio_post`
form-encodes them and signs the exact URL with the library's RequestValidator,
as Twilio does.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode

from twilio.request_validator import RequestValidator

from channels_adapters.twilio.common import public_base_url
from channels_adapters.twilio.resources import message_resource as twilio_message_resource
from tests.factories import ChannelFactory
from tests.provider_server import Reply
from tests.webhooks import check_webhook, fixture_json

ACCOUNT_SID = "AC3f2b8e9d1c4a4b6f8e7d6c5b4a392817"
AUTH_TOKEN = "twilio-auth-token-0123456789abcdef"
OUR_NUMBER = "+14155550100"


def twilio_channel(kind: str, **kwargs):
    return ChannelFactory(
        kind=kind,
        name=f"{kind} line",
        credentials={"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "phone_number": OUR_NUMBER},
        **kwargs,
    )


def sign(url: str, params: dict, token: str = AUTH_TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, params)


def twilio_post(
    client,
    channel,
    params: dict | str,
    *,
    kind: str | None = None,
    query: dict | None = None,
    token: str = AUTH_TOKEN,
    signature: str | None = None,
    url_base: str | None = None,
    headers: dict | None = None,
    **kwargs,
):
    """POST Twilio's form to the channel's real URL with a real X-Twilio-Signature."""
    if isinstance(params, str):
        params = fixture_json(kind or channel.kind, params)
    suffix = f"?{urlencode(query)}" if query else ""
    url = (url_base or public_base_url()) + channel.webhook_path + suffix
    sent_headers = {"X-Twilio-Signature": signature if signature is not None else sign(url, params, token)}
    sent_headers.update(headers or {})
    return check_webhook(
        client,
        channel,
        urlencode(params).encode(),
        headers=sent_headers,
        content_type="application/x-www-form-urlencoded",
        path_suffix=suffix,
        **kwargs,
    )


def message_resource(sid: str, *, to: str, from_: str, body: str = "", status: str = "queued") -> dict:
    """Twilio's Message resource as its REST API answers a create (HTTP 201), on the test account."""
    return twilio_message_resource(
        sid=sid, account_sid=ACCOUNT_SID, to=to, from_=from_, body=body, status=status,
        created="Thu, 26 Nov 2026 09:30:00 +0000",
    )  # fmt: skip


def twilio_error(code: int, message: str, status: int = 400) -> Reply:
    """Twilio's REST error body."""
    return Reply(
        status,
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
    )


def messages_path() -> str:
    return f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"


def form_of(request) -> dict:
    """What our client posted, with repeated fields (MediaUrl) as lists."""
    return {k: v if len(v) > 1 else v[0] for k, v in parse_qs(request.body.decode()).items()}


def numbers_path() -> str:
    return f"/2010-04-01/Accounts/{ACCOUNT_SID}/IncomingPhoneNumbers"


def incoming_numbers_page(*numbers: str) -> Reply:
    """Twilio's page of IncomingPhoneNumber resources (GET .../IncomingPhoneNumbers.json)."""
    uri = f"/2010-04-01/Accounts/{ACCOUNT_SID}/IncomingPhoneNumbers.json"
    return Reply(
        200,
        {
            "incoming_phone_numbers": [
                {"sid": f"PN{n:032x}", "account_sid": ACCOUNT_SID, "phone_number": number}
                for n, number in enumerate(numbers, start=1)
            ],
            "start": 0,
            "end": len(numbers) - 1,
            "page": 0,
            "page_size": 1,
            "first_page_uri": uri,
            "next_page_uri": None,
            "previous_page_uri": None,
            "uri": uri,
        },
    )
