"""The one helper every channel's fixture tests go through.

`check_webhook` posts a provider payload to the channel's real URL with the
headers the provider would send, asserts the answer, then processes what was
stored exactly as the worker does, and returns the stored events.
"""

from __future__ import annotations

import json
from pathlib import Path

from channels_adapters.models import InboundEvent
from channels_adapters.services import inbound_event_process

ROOT = Path(__file__).resolve().parent.parent


def fixture_bytes(kind: str, name: str) -> bytes:
    return (ROOT / "channels_adapters" / kind / "fixtures" / name).read_bytes()


def fixture_json(kind: str, name: str) -> dict:
    return json.loads(fixture_bytes(kind, name))


def check_webhook(
    client,
    channel,
    body: bytes | dict,
    *,
    headers: dict | None = None,
    content_type: str = "application/json",
    expect_status: int = 200,
    process: bool = True,
    path_suffix: str = "",
):
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    before = set(InboundEvent.objects.filter(channel=channel).values_list("pk", flat=True))
    response = client.generic(
        "POST",
        channel.webhook_path + path_suffix,
        data=body,
        content_type=content_type,
        headers=headers or {},
    )
    assert response.status_code == expect_status, response.content
    events = list(InboundEvent.objects.filter(channel=channel).exclude(pk__in=before).order_by("pk"))
    if process:
        events = [inbound_event_process(event_id=e.pk) for e in events]
    return response, events
