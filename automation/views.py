"""The inbox parts' endpoints: apply a macro, bulk actions, the away toggle, presence heartbeat.

Each one asks conversations.visibility for the cases it touches.
"""

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_POST

from automation import bulk, macros, presence
from conversations.views import agent_required
from conversations.visibility import cases_visible_to


def _error(exc, status=400):
    return JsonResponse(
        {"ok": False, "error": " ".join(getattr(exc, "messages", None) or [str(exc)])}, status=status
    )


@require_POST
@agent_required
def case_macro_apply(request, pk):
    case = cases_visible_to(user=request.user).filter(pk=pk).select_related("thread").first()
    if case is None:
        raise Http404
    macro = get_object_or_404(macros.macros_for(user=request.user), pk=request.POST.get("macro") or 0)
    try:
        done = macros.macro_apply(macro=macro, case=case, user=request.user)
    except PermissionDenied as exc:
        return _error(exc, status=403)
    return JsonResponse({"ok": True, "done": done})


@require_POST
@agent_required
def cases_bulk(request):
    ids = [i for i in request.POST.getlist("case") if str(i).isdigit()]
    try:
        count = bulk.cases_bulk_apply(
            user=request.user,
            case_ids=ids,
            action=request.POST.get("action", ""),
            value=request.POST.get("value", ""),
        )
    except PermissionDenied as exc:
        return _error(exc, status=403)
    except ValidationError as exc:
        return _error(exc)
    return JsonResponse({"ok": True, "count": count})


@require_POST
@agent_required
def presence_away(request):
    away = request.POST.get("away") in ("1", "true", "on")
    state = presence.presence_away_set(user_id=request.user.pk, away=away)
    return JsonResponse({"ok": True, "away": state.away})


@require_POST
@agent_required
def presence_heartbeat(request):
    presence.presence_heartbeat(user_id=request.user.pk)
    return JsonResponse({"ok": True})


@require_GET
@agent_required
def inbox_tools(request):
    """The inbox parts (macros of a case, away toggle, bulk bar), fetched by automation.js."""
    case = None
    if request.GET.get("case", "").isdigit():
        case = cases_visible_to(user=request.user).filter(pk=request.GET["case"]).first()
        if case is None:
            raise Http404
    return render(request, "automation/_tools.html", {"case": case})
