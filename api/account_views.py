"""The user's own API tokens page: make one (its secret shown once), see when each was used, revoke."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from api import selectors, services
from helpdesk.roles import user_is_agent


class TokenForm(forms.Form):
    name = forms.CharField(
        label=gettext_lazy("Name"),
        max_length=100,
        help_text=gettext_lazy("What uses it, e.g. “Shop backend”."),
    )


def _agent(request):
    if not user_is_agent(request.user):
        raise PermissionDenied(_("API tokens are for agents, supervisors and admins."))


@login_required
@require_http_methods(["GET", "POST"])
def tokens(request):
    _agent(request)
    form = TokenForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        try:
            created = services.api_token_create(user=request.user, name=form.cleaned_data["name"])
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            form = TokenForm()
    context = {"form": form, "created": created, "tokens": selectors.api_tokens_for(user=request.user)}
    response = render(request, "api/tokens.html", context, status=400 if form.errors else 200)
    # The one page that shows a secret: never kept by a browser or proxy cache.
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def token_revoke(request, pk):
    _agent(request)
    token = get_object_or_404(selectors.api_tokens_for(user=request.user), pk=pk)
    services.api_token_revoke(token=token)
    messages.success(request, _("Token “%(name)s” revoked.") % {"name": token.name})
    return redirect("account:tokens")
