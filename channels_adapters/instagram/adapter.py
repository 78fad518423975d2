"""Instagram direct messages of a professional account (Messenger API for Instagram).

Webhook: ``object: instagram`` with the Messenger shape; the sender is the
Instagram-scoped id (IGSID). Read receipts come as ``read.mid``
(messaging_seen); Instagram has no delivery receipts. Text is limited to
1,000 bytes.
"""

from channels_adapters.meta.messenger import MessengerAdapter
from customers.models import IdentityKind


class InstagramAdapter(MessengerAdapter):
    kind = "instagram"
    identity_kinds = (IdentityKind.INSTAGRAM,)
    identity_kind = IdentityKind.INSTAGRAM
    credential_keys = ("ig_account_id", "access_token", "app_secret", "verify_token")
    webhook_object = "instagram"
    token_key = "access_token"
    text_limit_bytes = 1000

    def app_secrets(self, channel):
        # With "Instagram Login" Meta may sign with the Instagram app's own secret.
        return [
            channel.credentials.get("app_secret", ""),
            channel.credentials.get("instagram_app_secret", ""),
        ]
