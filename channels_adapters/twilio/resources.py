"""What Twilio's REST API answers to a Message create (HTTP 201): the Message resource.

One copy of its shape for whatever stands in for Twilio: the demo's sandbox
(helpdesk/sandbox.py), the tests' local Twilio server and bench/outbound.py's.
Plain data, no Django: the bench's provider process imports it on its own.
"""

from __future__ import annotations

import time

API_VERSION = "2010-04-01"


def message_resource(
    *, sid: str, account_sid: str, to: str, from_: str, body: str = "", status: str = "queued",
    created: str | None = None,
) -> dict:  # fmt: skip
    # RFC 2822 dates, as Twilio writes them.
    created = created or time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
    uri = f"/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}"
    return {
        "account_sid": account_sid,
        "api_version": API_VERSION,
        "body": body,
        "date_created": created,
        "date_sent": None,
        "date_updated": created,
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": from_,
        "messaging_service_sid": None,
        "num_media": "0",
        "num_segments": "1",
        "price": None,
        "price_unit": "USD",
        "sid": sid,
        "status": status,
        "subresource_uris": {"media": f"{uri}/Media.json"},
        "to": to,
        "uri": f"{uri}.json",
    }
