"""Facebook Messenger: a Facebook page's conversations.

Webhook: ``object: page`` with ``entry[].messaging[]`` (messages, echoes,
delivery and read watermarks, reactions, postbacks). Identities are the
page-scoped ids (PSID). Replies go through the Send API with the page token.
"""

from channels_adapters.meta.messenger import MessengerAdapter
from customers.models import IdentityKind


class FacebookAdapter(MessengerAdapter):
    kind = "facebook"
    identity_kinds = (IdentityKind.FACEBOOK,)
    identity_kind = IdentityKind.FACEBOOK
    credential_keys = ("page_id", "page_access_token", "app_secret", "verify_token")
    webhook_object = "page"
    token_key = "page_access_token"
    text_limit_chars = 2000
    sends_metadata = True
