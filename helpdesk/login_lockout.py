"""Login brute force: django-axes locks a username (from one address) out after
repeated failures, on the login form, the admin and HTTP Basic alike.

Axes counts failures through Django's `authenticate(request=...)`; here are the
pieces it calls back, and the DRF authentication class that turns a lockout into
a clear 429 instead of DRF's generic "Invalid username/password".
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from rest_framework import exceptions
from rest_framework.authentication import BasicAuthentication


def cooloff_minutes() -> int:
    cooloff = settings.AXES_COOLOFF_TIME
    return max(1, int(cooloff.total_seconds() // 60)) if cooloff else 0


def lockout_message() -> str:
    minutes = cooloff_minutes()
    if minutes:
        return ngettext(
            "Too many failed login attempts. Signing in as this user from here is locked for "
            "%(minutes)d minute; try again later or ask an admin to unlock it.",
            "Too many failed login attempts. Signing in as this user from here is locked for "
            "%(minutes)d minutes; try again later or ask an admin to unlock it.",
            minutes,
        ) % {"minutes": minutes}
    return str(
        _(
            "Too many failed login attempts. Signing in as this user from here is locked until "
            "an admin unlocks it."
        )
    )


def client_ip(request) -> str | None:
    """The client's address. Behind HELPDESK_TRUSTED_PROXY_COUNT proxies it is the
    address the outermost trusted proxy saw (X-Forwarded-For, counted from the
    right: what a client writes on the left is never trusted)."""
    count = settings.HELPDESK_TRUSTED_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if count and forwarded:
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        if len(hops) >= count:
            return hops[-count]
    return request.META.get("REMOTE_ADDR")


def lockout_response(request, original_response=None, credentials=None):
    """What a locked-out browser sees: the login page again, with the reason (429)."""
    context = {
        "form": AuthenticationForm(request),
        "locked_out": True,
        "lockout_message": lockout_message(),
        "next": request.POST.get("next") or request.GET.get("next") or "",
    }
    response = render(request, "registration/login.html", context, status=429)
    if settings.AXES_COOLOFF_TIME:
        response["Retry-After"] = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    return response


class LockedOut(exceptions.Throttled):
    """429 with Retry-After (DRF sets it from `wait` for Throttled)."""

    default_code = "locked_out"
    default_detail = _("Too many failed login attempts.")


class LockoutBasicAuthentication(BasicAuthentication):
    """HTTP Basic whose failures axes counts, answering 429 with a clear text when locked out.

    DRF passes its own Request to authenticate(); axes flags that object, so the
    lockout is read back here (AxesMiddleware only sees Django's request).
    """

    def authenticate_credentials(self, userid, password, request=None):
        try:
            return super().authenticate_credentials(userid, password, request)
        except exceptions.AuthenticationFailed:
            if request is not None and getattr(request, "axes_locked_out", False):
                wait = settings.AXES_COOLOFF_TIME.total_seconds() if settings.AXES_COOLOFF_TIME else None
                raise LockedOut(wait=wait, detail=lockout_message()) from None
            raise
