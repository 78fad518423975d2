"""Campaign monitoring for supervisors: the funnel and cost, CSV export, pause and resume."""

from __future__ import annotations

import csv

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from helpdesk.roles import user_is_supervisor
from outreach import campaigns as campaign_services
from outreach.models import Campaign
from outreach.monitoring import campaigns_funnel, funnel_csv

PAGE_SIZE = 50


def _supervisor_only(request):
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if not user_is_supervisor(request.user):
        raise PermissionDenied(_("Campaigns are for supervisors and admins."))
    return None


def _campaigns():
    return list(Campaign.objects.order_by("-created_at")[:PAGE_SIZE])


@require_GET
def campaign_monitor(request):
    denied = _supervisor_only(request)
    if denied:
        return denied
    from django.conf import settings

    funnel = campaigns_funnel(campaigns=_campaigns())
    return render(
        request, "outreach/campaigns.html", {"funnel": funnel, "currency": settings.KPIS["CURRENCY"]}
    )


@require_GET
def campaign_csv(request):
    denied = _supervisor_only(request)
    if denied:
        return denied
    header, rows = funnel_csv(funnel=campaigns_funnel(campaigns=_campaigns()))
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="campaigns-funnel.csv"'
    writer = csv.writer(response)
    writer.writerow(header)
    writer.writerows(rows)
    return response


@require_POST
def campaign_action(request, pk: int, action: str):
    denied = _supervisor_only(request)
    if denied:
        return denied
    campaign = get_object_or_404(Campaign, pk=pk)
    act = {
        "pause": campaign_services.campaign_pause,
        "resume": campaign_services.campaign_resume,
        "launch": campaign_services.campaign_launch,
    }.get(action)
    if act is None:
        raise PermissionDenied
    try:
        act(campaign=campaign)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("outreach:campaigns")
