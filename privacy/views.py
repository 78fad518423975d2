"""The customers directory: list, search, a customer's page, and what can be done there.

Thin: every read asks privacy.selectors (which asks conversations.visibility);
every write is a service. Agents browse, edit and merge as in the inbox;
supervisors also undo merges and export; admins set legal holds and erase."""

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from audit.models import AuditAction
from audit.services import audit_record
from customers import selectors as customer_selectors
from customers import services as customer_services
from customers.models import CustomerMerge
from helpdesk.roles import user_is_admin, user_is_agent, user_is_supervisor
from privacy import selectors
from privacy.erasure import customer_erase, customer_legal_hold_set
from privacy.export import customer_export_archive
from privacy.forms import CustomerEditForm, EraseForm, IdentityAddForm, LegalHoldForm, MergeForm
from privacy.services import customer_edit
from privacy.unmerge import customer_unmerge


def _role_required(check, message):
    def decorator(view):
        @login_required
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not check(request.user):
                raise PermissionDenied(message)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


agent_required = _role_required(
    user_is_agent, "The customers directory is for agents, supervisors and admins."
)
supervisor_required = _role_required(user_is_supervisor, "Supervisors and admins only.")
admin_required = _role_required(user_is_admin, "Admins only.")


def _customer_or_404(request, pk):
    customer = selectors.customer_for_user(user=request.user, pk=pk)
    if customer is None:
        raise Http404(_("No such customer, or none of their cases is yours to see."))
    return customer


def _errors(error) -> str:
    if isinstance(error, ValidationError):
        return " ".join(error.messages)
    return " ".join(str(e) for errors in error.errors.values() for e in errors)


@agent_required
def customer_list(request):
    try:
        page = int(request.GET.get("page", "1"))
    except ValueError:
        page = 1
    directory = selectors.customers_directory(user=request.user, q=request.GET.get("q", ""), page=page)
    return render(request, "privacy/customer_list.html", {"directory": directory})


@agent_required
def customer_detail(request, pk):
    customer = _customer_or_404(request, pk)
    audit_record(action=AuditAction.CUSTOMER_VIEWED, target=customer, request=request)
    context = selectors.customer_page(user=request.user, customer=customer)
    merge_q = request.GET.get("merge_q", "").strip()
    context.update(
        customer=customer,
        edit_form=CustomerEditForm(initial={"name": customer.name, "attributes": _json(customer.attributes)}),
        identity_form=IdentityAddForm(),
        hold_form=LegalHoldForm(initial={"hold": customer.legal_hold, "reason": customer.legal_hold_reason}),
        erase_form=EraseForm(),
        merge_q=merge_q,
        merge_candidates=[
            c
            for c in customer_selectors.customer_search(user=request.user, q=merge_q, limit=10)
            if c.pk != customer.pk
        ]
        if merge_q
        else [],
        can_supervise=user_is_supervisor(request.user),
        can_admin=user_is_admin(request.user),
    )
    return render(request, "privacy/customer_detail.html", context)


def _json(value) -> str:
    import json

    return json.dumps(value or {}, indent=2, ensure_ascii=False, sort_keys=True)


@require_POST
@agent_required
def customer_edit_view(request, pk):
    customer = _customer_or_404(request, pk)
    form = CustomerEditForm(request.POST)
    if not form.is_valid():
        messages.error(request, _errors(form))
    else:
        customer_edit(
            customer=customer, name=form.cleaned_data["name"], attributes=form.cleaned_data["attributes"]
        )
        messages.success(request, _("Saved."))
    return redirect("privacy:customer", pk=customer.pk)


@require_POST
@agent_required
def identity_add_view(request, pk):
    customer = _customer_or_404(request, pk)
    form = IdentityAddForm(request.POST)
    if not form.is_valid():
        messages.error(request, _errors(form))
        return redirect("privacy:customer", pk=customer.pk)
    try:
        customer_services.identity_add(customer=customer, **form.cleaned_data)
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    return redirect("privacy:customer", pk=customer.pk)


@require_POST
@agent_required
def identity_remove_view(request, pk, identity_id):
    customer = _customer_or_404(request, pk)
    identity = get_object_or_404(customer.identities.all(), pk=identity_id)
    try:
        customer_services.identity_remove(identity=identity)
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    return redirect("privacy:customer", pk=customer.pk)


@agent_required
def customer_merge_view(request, pk):
    """Merge another customer into this one: preview (GET), confirm (POST)."""
    customer = _customer_or_404(request, pk)
    form = MergeForm(request.POST if request.method == "POST" else request.GET)
    if not form.is_valid():
        messages.error(request, _("Choose the customer to merge."))
        return redirect("privacy:customer", pk=customer.pk)
    other = _customer_or_404(request, form.cleaned_data["other"])
    if request.method != "POST":
        preview = customer_selectors.customer_merge_preview(survivor=customer, merged=other)
        return render(request, "privacy/merge_preview.html", {"customer": customer, "preview": preview})
    try:
        customer_services.merge_customers(survivor=customer, merged=other, merged_by=request.user)
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    else:
        messages.success(request, _("Merged. The merge can be undone from this page."))
    return redirect("privacy:customer", pk=customer.pk)


@require_POST
@supervisor_required
def customer_unmerge_view(request, merge_id):
    merge = get_object_or_404(CustomerMerge.objects.select_related("survivor"), pk=merge_id)
    _customer_or_404(request, merge.survivor_id)
    try:
        restored = customer_unmerge(merge=merge, user=request.user, request=request)
    except ValidationError as exc:
        messages.error(request, _errors(exc))
        return redirect("privacy:customer", pk=merge.survivor_id)
    messages.success(
        request,
        _("The merge was undone: %(customer)s is a customer of their own again.") % {"customer": restored},
    )
    return redirect("privacy:customer", pk=restored.pk)


@supervisor_required
def customer_export_view(request, pk):
    customer = _customer_or_404(request, pk)
    archive = customer_export_archive(customer=customer, user=request.user, request=request)
    return FileResponse(
        archive, as_attachment=True, filename=f"customer-{customer.pk}.zip", content_type="application/zip"
    )


@require_POST
@admin_required
def customer_legal_hold_view(request, pk):
    customer = _customer_or_404(request, pk)
    form = LegalHoldForm(request.POST)
    if form.is_valid():
        try:
            customer_legal_hold_set(
                customer=customer,
                hold=form.cleaned_data["hold"],
                reason=form.cleaned_data["reason"],
                user=request.user,
                request=request,
            )
        except ValidationError as exc:
            messages.error(request, _errors(exc))
    else:
        messages.error(request, _errors(form))
    return redirect("privacy:customer", pk=customer.pk)


@require_POST
@admin_required
def customer_erase_view(request, pk):
    customer = _customer_or_404(request, pk)
    form = EraseForm(request.POST)
    if not form.is_valid():
        messages.error(request, _errors(form))
        return redirect("privacy:customer", pk=customer.pk)
    try:
        customer_erase(customer=customer, user=request.user, request=request)
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    else:
        messages.success(
            request, _("The customer's personal data was erased; their cases still count in the KPIs.")
        )
    return redirect("privacy:customer", pk=customer.pk)
