"""Commitments in the inbox and the supervisors' page. Thin: parse, ask, call, render."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.http import require_GET, require_POST

from commitments import selectors, services
from commitments.forms import CloseForm, CommitmentFilterForm, CommitmentForm
from conversations.views import agent_required
from conversations.visibility import customers_visible_to
from helpdesk.roles import supervisor_required


def _errors(form) -> str:
    return " ".join(str(e) for errors in form.errors.values() for e in errors)


def _answer(*, error: str = "", status: int = 400, **extra) -> JsonResponse:
    return JsonResponse({"ok": not error, "error": error, **extra}, status=status if error else 200)


def _refusal(exc: Exception) -> JsonResponse:
    if isinstance(exc, PermissionDenied):
        return _answer(error=str(exc), status=403)
    return _answer(error=" ".join(exc.messages))


@require_POST
@agent_required
def commitment_mark(request, message_id):
    message = selectors.message_for_agent(user=request.user, pk=message_id)
    if message is None:
        return _answer(error=_("No such message, or it is not yours to see."), status=404)
    form = CommitmentForm(request.POST)
    if not form.is_valid():
        return _answer(error=_errors(form))
    try:
        commitment = services.commitment_create(
            message=message,
            text=form.cleaned_data["text"],
            due_on=form.cleaned_data["due_on"],
            by=request.user,
        )
    except (ValidationError, PermissionDenied) as exc:
        return _refusal(exc)
    return _answer(commitment=services.commitment_payload(commitment))


@require_POST
@agent_required
def commitment_close(request, pk):
    commitment = selectors.commitment_for_agent(user=request.user, pk=pk)
    if commitment is None:
        return _answer(error=_("No such commitment, or it is not yours to see."), status=404)
    form = CloseForm(request.POST)
    if not form.is_valid():
        return _answer(error=_errors(form))
    close = (
        services.commitment_fulfil
        if form.cleaned_data["action"] == "fulfil"
        else services.commitment_withdraw
    )
    try:
        commitment = close(commitment=commitment, by=request.user, note=form.cleaned_data["note"])
    except (ValidationError, PermissionDenied) as exc:
        return _refusal(exc)
    return _answer(commitment=services.commitment_payload(commitment))


PLACES = {
    "case": "commitments/_pinned_case.html",
    "sidebar": "commitments/_pinned_sidebar.html",
    "pop": "commitments/_pop.html",
}


@require_GET
@agent_required
def commitments_pinned(request, customer_id):
    """The pinned boxes' fragment, asked again by static/commitments/ when something changed."""
    template = PLACES.get(request.GET.get("place", "case"))
    if template is None:
        raise Http404("No such place.")
    if not customers_visible_to(user=request.user).filter(pk=customer_id).exists():
        raise Http404("No such customer, or none of their cases is yours to see.")
    commitments = selectors.customer_open_commitments(user=request.user, customer_id=customer_id)
    return render(request, template, {"commitments": commitments, "customer_id": customer_id})


@require_GET
@supervisor_required(_lazy("The commitments list is for supervisors and admins."))
def commitments_board(request):
    """Supervisors: every open promise, past due first."""
    form = CommitmentFilterForm(request.GET)
    filters = form.filters()
    rows = selectors.commitments_list(user=request.user, **filters)
    context = {
        "form": form,
        "rows": rows,
        "past_due_count": sum(1 for r in rows if r.past_due),
        "limit_reached": len(rows) >= selectors.LIST_LIMIT,
    }
    return render(request, "commitments/board.html", context)
