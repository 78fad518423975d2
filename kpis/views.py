"""KPI API, supervisor dashboard and the public survey page. Thin: parse, call, render."""

from __future__ import annotations

import csv

from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.utils.translation.trans_real import parse_accept_lang_header
from django.views.decorators.http import require_http_methods
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from helpdesk.db_router import reads_may_lag
from helpdesk.languages import supported_language
from helpdesk.login_lockout import LockoutBasicAuthentication
from helpdesk.roles import supervisor_required, user_is_supervisor
from kpis import dashboard, scorecard, services
from kpis.forms import KpiQueryForm, SurveyAnswerForm
from kpis.selectors import channel_scorecard, kpi_report


class IsSupervisor(BasePermission):
    message = _lazy("KPIs are for supervisors and admins.")

    def has_permission(self, request, view):
        return user_is_supervisor(request.user)


class KpiView(APIView):
    # Basic first: an anonymous API client gets 401 with a challenge, not 403.
    # Failed Basic attempts count towards the login lockout (helpdesk/login_lockout.py).
    authentication_classes = [LockoutBasicAuthentication, SessionAuthentication]
    permission_classes = [IsSupervisor]

    @reads_may_lag
    def get(self, request):
        form = KpiQueryForm(request.GET)
        if not form.is_valid():
            return Response({"errors": form.errors.get_json_data()}, status=400)
        q = form.cleaned_data
        return Response(kpi_report(start=q["start"], end=q["end"], flt=q["flt"]))


class ChannelScorecardView(APIView):
    """GET /api/v1/kpis/channels/?from=&to=: every channel ranked, with its verdict (docs/kpis.md)."""

    authentication_classes = KpiView.authentication_classes
    permission_classes = [IsSupervisor]

    @reads_may_lag
    def get(self, request):
        form = KpiQueryForm(request.GET)
        if not form.is_valid():
            return Response({"errors": form.errors.get_json_data()}, status=400)
        q = form.cleaned_data
        return Response(channel_scorecard(start=q["start"], end=q["end"]))


supervisors_only = supervisor_required(_lazy("The dashboard is for supervisors and admins."))


@supervisors_only
@reads_may_lag
def dashboard_view(request):
    form = KpiQueryForm(request.GET or None)
    context = dashboard.dashboard_context(form=form, params=request.GET)
    return render(
        request, "kpis/dashboard.html", context, status=200 if form.is_valid() or not request.GET else 400
    )


@supervisors_only
@reads_may_lag
def dashboard_csv(request, table: str):
    if table not in dashboard.TABLES:
        return HttpResponse(_("Unknown table."), status=404, content_type="text/plain")
    form = KpiQueryForm(request.GET or None)
    if request.GET and not form.is_valid():
        return HttpResponse("; ".join(e for errs in form.errors.values() for e in errs), status=400)
    header, rows = dashboard.table_csv(form=form, table=table)
    q = form.cleaned_data if form.is_bound else KpiQueryForm.defaults()
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="kpis-{table}-{q["start"]}-{q["end"]}.csv"'
    writer = csv.writer(response)
    writer.writerow(header)
    writer.writerows(rows)
    return response


@supervisors_only
@reads_may_lag
def scorecard_view(request):
    form = KpiQueryForm(request.GET or None)
    context = scorecard.scorecard_context(form=form)
    return render(
        request, "kpis/scorecard.html", context, status=200 if form.is_valid() or not request.GET else 400
    )


@supervisors_only
@reads_may_lag
def scorecard_csv(request):
    form = KpiQueryForm(request.GET or None)
    if request.GET and not form.is_valid():
        return HttpResponse("; ".join(e for errs in form.errors.values() for e in errs), status=400)
    header, rows = scorecard.scorecard_csv(form=form)
    q = form.cleaned_data if form.is_bound else KpiQueryForm.defaults()
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="channel-scorecard-{q["start"]}-{q["end"]}.csv"'
    writer = csv.writer(response)
    writer.writerow(header)
    writer.writerows(rows)
    return response


@require_http_methods(["GET", "POST"])
def survey_page(request, token: str):
    """The public one-time survey page behind the signed link sent to the customer.

    It speaks the customer's language where we know it, else the browser's
    (LocaleMiddleware), else the channel's.
    """
    try:
        survey = services.survey_request_from_token(token=token)
    except ValidationError as exc:
        return render(request, "kpis/survey.html", {"error": exc.messages[0]}, status=404)
    language = survey_page_language(request, survey)
    with translation.override(language):
        response = _survey_page(request, survey)
        response["Content-Language"] = language
        return response


def survey_page_language(request, survey) -> str:
    known = (
        supported_language((survey.customer.attributes or {}).get("language")) if survey.customer_id else ""
    )
    if known:
        return known
    for code, _quality in parse_accept_lang_header(request.headers.get("Accept-Language", "")):
        if supported_language(code):
            return supported_language(code)  # a language the browser asks for and we speak
    return services.survey_language(request=survey)


def _survey_page(request, survey):
    if survey.status not in (survey.Status.SENT, survey.Status.ANSWERED):
        return render(
            request, "kpis/survey.html", {"error": _("This survey is not open for answers.")}, status=404
        )
    form = SurveyAnswerForm(request.POST or None, kind=survey.kind)
    done = survey.status == survey.Status.ANSWERED
    error = None
    if request.method == "POST" and not done and form.is_valid():
        try:
            services.survey_answer_record(request=survey, score=form.cleaned_data["score"], via="link")
            done = True
        except ValidationError as exc:
            # Answered meanwhile (by a reply on the channel, or a second click): thank them all the same.
            survey.refresh_from_db(fields=["status"])
            done = survey.status == survey.Status.ANSWERED
            error = None if done else exc.messages[0]
    return render(
        request,
        "kpis/survey.html",
        {"survey": survey, "form": form, "done": done, "error": error},
        status=400 if request.method == "POST" and form.errors else 200,
    )
