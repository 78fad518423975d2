"""Pushes to agents' browsers over the channel layer.

Every publish happens after commit (callers use transaction.on_commit), so an
agent never sees a message that a rollback later takes back. A push that fails
(Redis away) is logged and dropped: the data is safe in the database and the
inbox reloads it.
"""

import asyncio
import logging
import threading

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

logger = logging.getLogger(__name__)

# Outside an ASGI server (Celery workers, management commands) async_to_sync
# would start a new event loop per push, and channels_redis would open a new
# Redis connection for each. One long-lived loop per process keeps them pooled.
_PUSH_TIMEOUT_SECONDS = 5
_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def _push_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _loop_lock:
        if _loop is None or _loop.is_closed():
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="realtime-push", daemon=True).start()
        return _loop


def _send(layer, group: str, message: dict) -> None:
    in_async_server = getattr(SyncToAsync.threadlocal, "main_event_loop", None) is not None
    if in_async_server or isinstance(layer, InMemoryChannelLayer):
        # The in-memory layer's queues belong to the server's loop; under ASGI
        # async_to_sync already reuses the server's loop and its connections.
        async_to_sync(layer.group_send)(group, message)
        return
    future = asyncio.run_coroutine_threadsafe(layer.group_send(group, message), _push_loop())
    future.result(timeout=_PUSH_TIMEOUT_SECONDS)


INBOX_GROUP = "inbox"


def publish(event: str, data: dict, group: str = INBOX_GROUP) -> None:
    """Push any event to agents (e.g. 'call.incoming' for a screen pop)."""
    _push(event, data, group)


def _push(event: str, data: dict, group: str = INBOX_GROUP) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        _send(layer, group, {"type": "inbox.event", "event": event, "data": data})
    except Exception:  # noqa: BLE001 - a lost push must never fail a write
        logger.exception("Could not push %s to %s", event, group)


def message_payload(message) -> dict:
    return {
        "id": message.pk,
        "thread": message.thread_id,
        "case": message.case_id,
        "channel": message.channel_id,
        "direction": message.direction,
        "kind": message.kind,
        "author": message.author,
        "body": message.body[:500],
        "status": message.status,
        "error": message.error,
        "created_at": message.created_at.isoformat(),
    }


def case_payload(case) -> dict:
    return {
        "id": case.pk,
        "thread": case.thread_id,
        "status": case.status,
        "assignee": case.assignee_id,
        "team": case.team_id,
        "priority": case.priority,
        "waiting_since": case.waiting_since.isoformat() if case.waiting_since else None,
        "reopen_count": case.reopen_count,
    }


def publish_message_created(message, case=None) -> None:
    data = {"message": message_payload(message)}
    if case is not None:
        data["case"] = case_payload(case)
    _push("message.created", data)


def publish_message_updated(message) -> None:
    _push("message.updated", {"message": message_payload(message)})


def publish_case_updated(case, *, change: str) -> None:
    _push("case.updated", {"case": case_payload(case), "change": change})


def publish_customer_merged(*, survivor_id: int, merged_id: int) -> None:
    _push("customer.merged", {"survivor": survivor_id, "merged": merged_id})
