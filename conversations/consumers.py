from collections import deque

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from conversations import realtime, relay, signals, visibility
from helpdesk.roles import user_is_agent

# Event ids remembered per socket to drop the second copy of a push that reached
# this user through two of their groups.
_SEEN_EVENTS = 512


def _connect_groups(user) -> list[str] | None:
    if not user_is_agent(user):
        return None
    return visibility.groups_for_user(user=user)


def _typing_case(user, case_id: int):
    """The case, if this agent may see it: typing on a case is told only to its viewers."""
    from conversations.models import Case

    case = Case.objects.filter(pk=case_id).only("team_id", "assignee_id").first()
    if case is None or not visibility.case_visible(user=user, case=case):
        return None
    return case


class AgentConsumer(AsyncJsonWebsocketConsumer):
    """An agent's browser: receives the inbox events of the cases they may see, shares
    typing signals. The groups come from the visibility rule at connect time; nothing
    the browser sends can add one."""

    async def connect(self):
        user = self.scope.get("user")
        groups = await database_sync_to_async(_connect_groups)(user)
        if groups is None:
            await self.close(code=4403)
            return
        self.user = user
        self.groups_joined = groups
        self.seen = deque(maxlen=_SEEN_EVENTS)
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        await database_sync_to_async(signals.agent_presence)(user, "connect")

    async def disconnect(self, code):
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)
        if getattr(self, "user", None) is not None:
            await database_sync_to_async(signals.agent_presence)(self.user, "disconnect")

    async def receive_json(self, content, **kwargs):
        if content.get("action") == "heartbeat":
            await database_sync_to_async(signals.agent_presence)(self.user, "heartbeat")
            return
        # "<colleague> is replying": relayed to the case's viewers, never stored.
        if content.get("action") != "typing" or not isinstance(content.get("case"), int):
            return
        case = await database_sync_to_async(_typing_case)(self.user, content["case"])
        if case is None:
            return
        data = {
            "case": case.pk,
            "user": self.user.pk,
            "name": self.user.get_full_name() or self.user.get_username(),
        }
        await database_sync_to_async(realtime.publish)("agent.typing", data, case=case)
        if content.get("to_customer"):
            # A reply being written (not a note): the customer may see "typing…" too.
            await database_sync_to_async(relay.case_typing_relay)(
                case_id=case.pk, name=self.user.first_name or data["name"]
            )

    async def inbox_events(self, batch):
        # Pushes made while the worker's previous send was under way, in order.
        for event in batch["events"]:
            await self.inbox_event(event)

    async def inbox_event(self, event):
        event_id = event.get("id")
        if event_id is not None:
            if event_id in self.seen:
                return
            self.seen.append(event_id)
        await self.send_json({"event": event["event"], "data": event["data"]})
