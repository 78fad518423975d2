"""Pushes to agents' browsers over the channel layer.

Every publish happens after commit (callers use transaction.on_commit), so an
agent never sees a message that a rollback later takes back. A push that fails
(Redis away) is logged and dropped: the data is safe in the database and the
inbox reloads it.
"""

import asyncio
import logging
import os
import threading
import uuid

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

logger = logging.getLogger(__name__)

# Outside an ASGI server (Celery workers, management commands) async_to_sync
# would start a new event loop per push, and channels_redis would open a new
# Redis connection for each. One long-lived loop per process keeps them pooled.
_PUSH_TIMEOUT_SECONDS = 5
_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def _after_fork_in_child() -> None:
    # A forked worker process has the parent's globals but not its loop thread.
    global _loop, _queue, _loop_lock
    _loop, _queue, _loop_lock = None, None, threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _push_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _loop_lock:
        if _loop is None or _loop.is_closed():
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="realtime-push", daemon=True).start()
        return _loop


async def _group_send_all(layer, groups: list[str], message: dict) -> list:
    # The groups' sends overlap: one push costs one crossing into the loop and
    # about one Redis round trip, however many groups may see the case.
    return await asyncio.gather(*(layer.group_send(g, message) for g in groups), return_exceptions=True)


# Pushes from a worker go through one queue on the push loop instead of each
# waiting for its Redis round trip: the drainer moves on to the next message at
# once, and what piles up while a send is under way leaves as one send per group
# ("inbox.events", in order), so a burst costs a group send per batch, not per
# message. One consumer keeps every group's pushes in the order they were made.
_BATCH_MAX = 200
_queue: asyncio.Queue | None = None


def _queue_get() -> asyncio.Queue:
    global _queue
    loop = _push_loop()
    with _loop_lock:
        if _queue is None:
            _queue = asyncio.Queue()
            asyncio.run_coroutine_threadsafe(_queue_consume(_queue), loop)
    return _queue


async def _queue_consume(queue: asyncio.Queue) -> None:
    while True:
        items = [await queue.get()]
        while len(items) < _BATCH_MAX and not queue.empty():
            items.append(queue.get_nowait())
        try:
            await _batch_send(items)
        except Exception:  # noqa: BLE001 - a lost push must never stop the pushes after it
            logger.exception("Could not push %s events", len(items))
        finally:
            for _ in items:
                queue.task_done()


async def _batch_send(items: list[tuple]) -> None:
    layer = items[0][0]
    by_group: dict[str, list[dict]] = {}
    for _layer, groups, message in items:
        for group in groups:
            by_group.setdefault(group, []).append(message)
    sends = {
        group: messages[0] if len(messages) == 1 else {"type": "inbox.events", "events": messages}
        for group, messages in by_group.items()
    }
    results = await asyncio.gather(
        *(layer.group_send(group, message) for group, message in sends.items()), return_exceptions=True
    )
    for group, result in zip(sends, results, strict=True):
        if isinstance(result, BaseException):
            logger.error("Could not push %s events to %s", len(by_group[group]), group, exc_info=result)


def _send(layer, groups: list[str], message: dict) -> list:
    in_async_server = getattr(SyncToAsync.threadlocal, "main_event_loop", None) is not None
    if in_async_server or isinstance(layer, InMemoryChannelLayer):
        # The in-memory layer's queues belong to the server's loop; under ASGI
        # async_to_sync already reuses the server's loop and its connections.
        return async_to_sync(_group_send_all)(layer, groups, message)
    queue = _queue_get()
    _push_loop().call_soon_threadsafe(queue.put_nowait, (layer, groups, message))
    return [None] * len(groups)


def pushes_flush(timeout: float = _PUSH_TIMEOUT_SECONDS) -> None:
    """Wait until this process's queued pushes are sent (a drain's end, tests)."""
    if _queue is None:
        return
    try:
        asyncio.run_coroutine_threadsafe(_queue.join(), _push_loop()).result(timeout=timeout)
    except Exception:  # noqa: BLE001 - pushes are best effort; the data is in the database
        logger.warning("Pushes still queued after %s s", timeout)


def publish(
    event: str,
    data: dict,
    *,
    case=None,
    case_id: int | None = None,
    user_id: int | None = None,
    everyone: bool = False,
) -> None:
    """Push an event to the browsers of the users who may see it.

    About a case (`case`, or `case_id` to look it up): its team's or the unrouted
    queue's group, its assignee and the supervisors (visibility.groups_for_case).
    For one user (`user_id`: their @mention): that user's group only. `everyone`:
    what belongs to no case (a merge event), which every agent may see. None of
    these: the supervisors alone, so a push nobody scoped never reaches every agent.
    """
    groups = _groups(case=case, case_id=case_id, user_id=user_id, everyone=everyone)
    _push(event, data, groups)


def publish_to_groups(event: str, data: dict, groups: list[str]) -> None:
    """For a channel's own listeners (a web-chat visitor's sockets): groups the caller owns."""
    _push(event, data, groups)


def _groups(*, case, case_id, user_id, everyone) -> list[str]:
    from conversations import visibility

    if user_id is not None:
        return [visibility.user_group(user_id)]
    if case is None and case_id is not None:
        from conversations.models import Case

        case = Case.objects.filter(pk=case_id).only("team_id", "assignee_id").first()
    if case is not None:
        return visibility.groups_for_case(team_id=case.team_id, assignee_id=case.assignee_id)
    if everyone and case_id is None:
        # Every agent is in one of these two groups.
        return [visibility.SUPERVISORS_GROUP, visibility.UNROUTED_GROUP]
    return [visibility.SUPERVISORS_GROUP]


def _push(event: str, data: dict, groups: list[str]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    # One id for every copy: a browser in two of the groups shows the event once.
    message = {"type": "inbox.event", "id": uuid.uuid4().hex, "event": event, "data": data}
    try:
        results = _send(layer, groups, message)
    except Exception:  # noqa: BLE001 - a lost push must never fail a write
        logger.exception("Could not push %s to %s", event, groups)
        return
    for group, result in zip(groups, results, strict=True):
        if isinstance(result, BaseException):
            logger.error("Could not push %s to %s", event, group, exc_info=result)


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
        # Browsers tell a case opened since they loaded (a new case to notify) from the others.
        "opened_at": case.opened_at.isoformat() if case.opened_at else None,
    }


def _message_case(message, case=None):
    if case is not None:
        return case
    if message.case_id and "case" in message._state.fields_cache:
        return message.case
    return None


def publish_message_created(message, case=None) -> None:
    data = {"message": message_payload(message)}
    if case is not None:
        data["case"] = case_payload(case)
    publish(
        "message.created",
        data,
        case=_message_case(message, case),
        case_id=message.case_id,
        everyone=message.case_id is None,
    )


def publish_message_updated(message) -> None:
    publish(
        "message.updated",
        {"message": message_payload(message)},
        case=_message_case(message),
        case_id=message.case_id,
        everyone=message.case_id is None,
    )


def publish_case_updated(case, *, change: str) -> None:
    publish("case.updated", {"case": case_payload(case), "change": change}, case=case)


def publish_customer_merged(*, survivor_id: int, merged_id: int) -> None:
    from conversations import visibility
    from conversations.models import Case

    data = {"survivor": survivor_id, "merged": merged_id}
    groups = {visibility.SUPERVISORS_GROUP}
    for team_id, assignee_id in Case.objects.filter(thread__customer_id=survivor_id).values_list(
        "team_id", "assignee_id"
    ):
        groups.update(visibility.groups_for_case(team_id=team_id, assignee_id=assignee_id))
    _push("customer.merged", data, sorted(groups))
