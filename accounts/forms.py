from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _


class PreferencesForm(forms.Form):
    language = forms.ChoiceField(
        label=_("Language"),
        required=False,
        choices=[("", _("As my browser asks (Accept-Language)")), *settings.LANGUAGES],
        help_text=_("The inbox, the dashboard and the admin are shown in this language."),
    )
