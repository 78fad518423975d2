"""`Authorization: Bearer <personal API token>` for integrations; the browser keeps its session."""

from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from api.services import api_token_authenticate


class BearerTokenAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None  # not ours: the session (or nobody) decides
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(_("Send the header as 'Authorization: Bearer <token>'."))
        try:
            secret = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(_("That API token is not valid.")) from None
        token = api_token_authenticate(secret=secret)
        if token is None:
            # One answer for unknown and revoked: a caller learns nothing about other tokens.
            raise exceptions.AuthenticationFailed(_("That API token is not valid or has been revoked."))
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("The user of this API token is deactivated."))
        return token.user, token

    def authenticate_header(self, request):
        # Makes DRF answer 401 (with this challenge) rather than 403 to a caller with no credentials.
        return 'Bearer realm="api"'
