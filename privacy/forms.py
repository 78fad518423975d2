import json

from django import forms
from django.utils.translation import gettext_lazy as _

from customers.models import Customer, IdentityKind


class CustomerEditForm(forms.Form):
    name = forms.CharField(
        label=_("Name"), max_length=Customer._meta.get_field("name").max_length, required=False
    )
    attributes = forms.CharField(
        label=_("Attributes (JSON object)"),
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
        required=False,
    )

    def clean_attributes(self):
        raw = (self.cleaned_data.get("attributes") or "").strip()
        if not raw:
            return {}
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise forms.ValidationError(_("Not valid JSON: %(error)s") % {"error": exc}) from exc
        if not isinstance(value, dict):
            raise forms.ValidationError(_('Attributes are a JSON object, like {"plan": "gold"}.'))
        return value


class IdentityAddForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), choices=IdentityKind.choices)
    address = forms.CharField(label=_("Address"), max_length=320)


class MergeForm(forms.Form):
    other = forms.IntegerField(min_value=1)


class LegalHoldForm(forms.Form):
    hold = forms.BooleanField(label=_("Under legal hold"), required=False)
    reason = forms.CharField(
        label=_("Reason"), max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 2})
    )


class EraseForm(forms.Form):
    confirm = forms.CharField(label=_("Type ERASE to confirm"))

    def clean_confirm(self):
        if self.cleaned_data["confirm"].strip() != "ERASE":
            raise forms.ValidationError(_("Type ERASE (in capitals) to confirm the erasure."))
        return "ERASE"
