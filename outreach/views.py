"""Outreach pages: the public unsubscribe page, the case's "follow up" form, campaign monitoring."""

from __future__ import annotations

from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from outreach import consent
from outreach.models import Consent, ConsentStatus


@csrf_exempt  # the signed token is the authority, and mail clients' one-click POST carries no CSRF token
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token: str):
    """GET: a page with one button (works without JavaScript). POST: recorded, confirmation page.

    A mail client's RFC 8058 one-click POST ("List-Unsubscribe=One-Click") lands here too.
    """
    found = consent.unsubscribe_read(token)
    if found is None:
        raise Http404
    customer_id, kind = found
    if request.method == "GET":
        return render(request, "outreach/unsubscribe.html", {"token": token, "done": False})
    consent.consent_record(
        customer_id=customer_id,
        channel_kind=kind,
        status=ConsentStatus.OPTED_OUT,
        source=Consent.Source.LINK,
        evidence="unsubscribe link",
    )
    if request.POST.get("List-Unsubscribe") == "One-Click":
        return HttpResponse(status=200)
    return render(request, "outreach/unsubscribe.html", {"token": token, "done": True})
