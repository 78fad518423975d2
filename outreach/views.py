"""Outreach pages: the public unsubscribe page, the case's "follow up" form, campaign monitoring."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from conversations.models import Case
from conversations.selectors import case_for_agent
from conversations.views import agent_required
from conversations.visibility import case_visible
from outreach import consent, services
from outreach.forms import CaseOutreachForm
from outreach.models import Consent, ConsentStatus, Source


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


@require_GET
@agent_required
def case_box(request, pk: int):
    """The case page's outreach box, fetched after the page: the same visibility as the page."""
    case = case_for_agent(user=request.user, pk=pk)
    if case is None:
        raise Http404(_("No such case, or it belongs to a team you are not in."))
    return render(request, "outreach/_case_box.html", {"case": case, "customer": case.thread.customer})


@require_POST
@agent_required
def case_start(request, pk: int):
    """An agent follows up from a case: "if unread in 4 h, try SMS, then email"."""
    case = Case.objects.select_related("thread__customer").filter(pk=pk).first()
    if case is None or not case_visible(user=request.user, case=case):
        raise Http404(_("No such case, or it belongs to a team you are not in."))
    form = CaseOutreachForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
        return redirect("inbox:case", pk=case.pk)
    try:
        outreach = services.outreach_start(
            customer=case.thread.customer,
            case=case,
            chain=form.chain(),
            body=form.cleaned_data["body"],
            goal=form.cleaned_data["goal"],
            source=Source.AGENT,
            created_by=request.user,
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("inbox:case", pk=case.pk)
    messages.success(request, _("Outreach #%(id)s started.") % {"id": outreach.pk})
    return redirect("inbox:case", pk=case.pk)
