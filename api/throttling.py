"""Rate limits per API token (or signed-in user) and per client address, counted in the cache (Redis).

Rates are read at each request from settings.HELPDESK_API (HELPDESK_API_RATE_PER_TOKEN,
HELPDESK_API_RATE_PER_IP), e.g. "600/minute". A refusal is a 429 with Retry-After.
"""

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from api.models import ApiToken
from helpdesk.login_lockout import client_ip


class _SettingsRateThrottle(SimpleRateThrottle):
    setting: str

    def get_rate(self):
        return settings.HELPDESK_API[self.setting] or None


class TokenRateThrottle(_SettingsRateThrottle):
    """One budget per token; a browser session's budget is its user's."""

    scope = "api_token"
    setting = "RATE_PER_TOKEN"

    def get_cache_key(self, request, view):
        if isinstance(request.auth, ApiToken):
            ident = f"token-{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            return None  # anonymous: the address's budget below applies
        return self.cache_format % {"scope": self.scope, "ident": ident}


class IpRateThrottle(_SettingsRateThrottle):
    """Every request from one address, with or without a token: bounds guessing tokens too."""

    scope = "api_ip"
    setting = "RATE_PER_IP"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": client_ip(request) or "unknown"}
