from django import forms
from django.utils.translation import gettext_lazy as _

from commitments.models import CommitmentStatus
from commitments.services import NOTE_MAX, TEXT_MAX
from conversations.models import Team

ALL = "all"


class CommitmentForm(forms.Form):
    text = forms.CharField(label=_("What was promised"), max_length=TEXT_MAX, widget=forms.Textarea)
    due_on = forms.DateField(label=_("Due on (optional)"), required=False)


class CloseForm(forms.Form):
    action = forms.ChoiceField(choices=[("fulfil", _("Fulfilled")), ("withdraw", _("Withdrawn"))])
    note = forms.CharField(label=_("Note (optional)"), max_length=NOTE_MAX, required=False)


class CommitmentFilterForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[(CommitmentStatus.OPEN, _("Open")), (ALL, _("All")), *CommitmentStatus.choices[1:]],
    )
    team = forms.ModelChoiceField(
        label=_("Team"), queryset=Team.objects.order_by("name"), required=False, empty_label=_("Every team")
    )
    past_due = forms.BooleanField(label=_("Past due only"), required=False)
    q = forms.CharField(label=_("Search"), required=False, max_length=100)

    def filters(self) -> dict:
        if not self.is_valid():
            return {"status": CommitmentStatus.OPEN}
        data = self.cleaned_data
        status = data.get("status") or CommitmentStatus.OPEN
        return {
            "status": "" if status == ALL else status,
            "team_id": data["team"].pk if data.get("team") else None,
            "past_due_only": bool(data.get("past_due")),
            "query": (data.get("q") or "").strip(),
        }
