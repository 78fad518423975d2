"""The person's own settings page: today, the language of the UI."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from accounts import selectors, services
from accounts.forms import PreferencesForm


@login_required
@require_http_methods(["GET", "POST"])
def preferences(request):
    form = PreferencesForm(
        request.POST or None, initial={"language": selectors.user_language(user=request.user)}
    )
    if request.method == "POST" and form.is_valid():
        try:
            chosen = services.user_preferences_update(
                user=request.user, language=form.cleaned_data["language"], session=request.session
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            # The confirmation already speaks the language just chosen.
            language = chosen.language or translation.get_language_from_request(request)
            with translation.override(language):
                messages.success(request, _("Your settings are saved."))
            return redirect("accounts:preferences")
    return render(request, "accounts/preferences.html", {"form": form}, status=400 if form.errors else 200)
