"""What every REST API view shares: who may call, how often, and the error shape."""

from django.http import Http404
from django.views.decorators.csrf import csrf_exempt
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


@csrf_exempt  # it changes nothing: a POST to a wrong URL is told so, not a CSRF page
def endpoint_not_found(request, rest=""):
    """Any other URL under /api/v1/: a 404 in the API's error shape, not the HTML page."""
    from django.http import JsonResponse
    from django.utils.translation import gettext as _

    message = _("No such endpoint. API URLs end with a slash; see /api/v1/docs/.")
    return JsonResponse({"error": {"code": "not_found", "message": message, "fields": {}}}, status=404)
