from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from conversations.realtime import INBOX_GROUP
from helpdesk.roles import user_is_agent


class AgentConsumer(AsyncJsonWebsocketConsumer):
    """An agent's browser: receives every inbox event live, shares typing signals."""

    async def connect(self):
        user = self.scope.get("user")
        if not await database_sync_to_async(user_is_agent)(user):
            await self.close(code=4403)
            return
        self.user = user
        await self.channel_layer.group_add(INBOX_GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if getattr(self, "user", None) is not None:
            await self.channel_layer.group_discard(INBOX_GROUP, self.channel_name)

    async def receive_json(self, content, **kwargs):
        # "<colleague> is replying": relayed, never stored.
        if content.get("action") == "typing" and isinstance(content.get("case"), int):
            await self.channel_layer.group_send(
                INBOX_GROUP,
                {
                    "type": "inbox.event",
                    "event": "agent.typing",
                    "data": {
                        "case": content["case"],
                        "user": self.user.pk,
                        "name": self.user.get_full_name() or self.user.get_username(),
                    },
                },
            )

    async def inbox_event(self, event):
        await self.send_json({"event": event["event"], "data": event["data"]})
