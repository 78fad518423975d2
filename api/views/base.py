"""What every REST API view shares: who may call, how often, and the error shape."""

from django.http import Http404
from rest_framework.authentication import SessionAuthentication
from rest_framework.renderers import JSONRenderer

from api.authentication import BearerTokenAuthentication
from api.exceptions import api_exception_handler
from api.pagination import KeysetPagination
from api.parsers import StrictJSONParser
from api.permissions import IsAgent
from api.throttling import IpRateThrottle, TokenRateThrottle


class ApiMixin:
    # Bearer first: a caller without credentials gets 401 with its challenge, not 403.
    authentication_classes = [BearerTokenAuthentication, SessionAuthentication]
    permission_classes = [IsAgent]
    throttle_classes = [TokenRateThrottle]
    pagination_class = KeysetPagination
    parser_classes = [StrictJSONParser]
    renderer_classes = [JSONRenderer]

    def get_exception_handler(self):
        return api_exception_handler

    def perform_authentication(self, request):
        # The address's budget is checked before the credentials, so it also bounds
        # a client trying token after token (each failure would stop at 401 first).
        throttle = IpRateThrottle()
        if not throttle.allow_request(request, self):
            self.throttled(request, throttle.wait())
        super().perform_authentication(request)


def not_found(message) -> None:
    """404 in words, for an object that does not exist or that this user may not see:
    the two are answered alike, so existence is never confirmed."""
    raise Http404(str(message))
