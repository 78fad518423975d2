"""Campaign monitoring for supervisors: the funnel and cost, CSV export, pause and resume."""

from __future__ import annotations

import csv

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.http import require_GET, require_POST

from helpdesk.roles import supervisor_required
from outreach import campaigns as campaign_services
from outreach.models import Campaign
from outreach.monitoring import campaigns_funnel, funnel_csv

PAGE_SIZE = 50


supervisors_only = supervisor_required(_lazy("Campaigns are for supervisors and admins."))


def _campaigns():
    return list(Campaign.objects.order_by("-created_at")[:PAGE_SIZE])


@require_GET
@supervisors_only
def campaign_monitor(request):
    from django.conf import settings

    funnel = campaigns_funnel(campaigns=_campaigns())
    return render(
        request, "outreach/campaigns.html", {"funnel": funnel, "currency": settings.KPIS["CURRENCY"]}
    )


@require_GET
@supervisors_only
def campaign_csv(request):
    header, rows = funnel_csv(funnel=campaigns_funnel(campaigns=_campaigns()))
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="campaigns-funnel.csv"'
    writer = csv.writer(response)
    writer.writerow(header)
    writer.writerows(rows)
    return response


@require_POST
@supervisors_only
def campaign_action(request, pk: int, action: str):
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
