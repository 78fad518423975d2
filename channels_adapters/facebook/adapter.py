"""Facebook Messenger: a Facebook page's conversations.

Webhook: ``object: page`` with ``entry[].messaging[]`` (messages, echoes,
delivery and read watermarks, reactions, postbacks). Identities are the
page-scoped ids (PSID). Replies go through the Send API with the page token.
"""

from channels_adapters.base import PermanentSendError
from channels_adapters.meta.graph import graph_request
from channels_adapters.meta.messenger import MessengerAdapter
from customers.models import IdentityKind

SUBSCRIBED_FIELDS = (
    "messages",
    "message_echoes",
    "message_deliveries",
    "message_reads",
    "messaging_postbacks",
    "message_reactions",
    "message_edits",
)


class FacebookAdapter(MessengerAdapter):
    kind = "facebook"
    identity_kinds = (IdentityKind.FACEBOOK,)
    identity_kind = IdentityKind.FACEBOOK
    credential_keys = ("page_id", "page_access_token", "app_secret", "verify_token")
    webhook_object = "page"
    token_key = "page_access_token"
    text_limit_chars = 2000
    sends_metadata = True

    def register_webhook(self, channel):
        """Subscribe the Page to our app's webhook (the callback URL itself is app-level,
        set once in the App Dashboard)."""
        page_id = str(channel.credentials.get("page_id") or "")
        if not page_id:
            raise PermanentSendError("The channel has no page_id: an admin must fill it in first.")
        answer = graph_request(
            "POST",
            f"{page_id}/subscribed_apps",
            token=channel.credentials.get(self.token_key, ""),
            params={"subscribed_fields": ",".join(SUBSCRIBED_FIELDS)},
        )
        if answer.get("success") is not True:
            raise PermanentSendError(f"Meta did not confirm the subscription: {answer}")
        return (
            f"Page {page_id} now sends {', '.join(SUBSCRIBED_FIELDS)} to the app. In the App Dashboard "
            f"(Webhooks, object Page) the callback URL must be {channel.webhook_url} with this channel's "
            "verify token."
        )
