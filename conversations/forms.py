"""Input of the agent inbox: parsed and validated here, written by services."""

from django import forms
from django.contrib.auth import get_user_model
from django.utils.translation import gettext as _t

from conversations.models import CaseStatus, Label, Priority, Team
from conversations.selectors import INBOX_VIEWS, InboxFilters


class InboxFilterForm(forms.Form):
    view = forms.ChoiceField(choices=[(k, v[0]) for k, v in INBOX_VIEWS.items()], required=False)
    channel = forms.IntegerField(required=False, min_value=1)
    team = forms.IntegerField(required=False, min_value=1)
    label = forms.IntegerField(required=False, min_value=1)
    agent = forms.IntegerField(required=False, min_value=1)
    priority = forms.TypedChoiceField(choices=Priority.choices, coerce=int, required=False, empty_value=None)
    q = forms.CharField(required=False, max_length=200, strip=True)
    after = forms.CharField(required=False, max_length=80)

    def filters(self) -> InboxFilters:
        # A bad filter value is dropped rather than failing the whole inbox.
        self.is_valid()
        data = self.cleaned_data
        return InboxFilters(
            view=data.get("view") or "open",
            channel=data.get("channel"),
            team=data.get("team"),
            label=data.get("label"),
            agent=data.get("agent"),
            priority=data.get("priority"),
            q=data.get("q") or "",
            after=data.get("after") or "",
        )


class ReplyForm(forms.Form):
    MODES = [("reply", "Reply to customer"), ("note", "Internal note")]

    mode = forms.ChoiceField(choices=MODES, initial="reply")
    body = forms.CharField(required=False, max_length=20000, strip=True, widget=forms.Textarea)
    channel = forms.IntegerField(required=False, min_value=1)
    template_name = forms.CharField(required=False, max_length=120)
    template_language = forms.CharField(required=False, max_length=20)
    template_parameters = forms.CharField(
        required=False, max_length=2000, help_text="One parameter per line, in order."
    )

    def meta(self) -> dict | None:
        name = self.cleaned_data.get("template_name")
        if not name:
            return None
        params = [p.strip() for p in (self.cleaned_data.get("template_parameters") or "").splitlines()]
        return {
            "template": {
                "name": name,
                "language": self.cleaned_data.get("template_language") or "en_US",
                "parameters": [p for p in params if p],
            }
        }


class AssignForm(forms.Form):
    assignee = forms.CharField(required=False, max_length=20, help_text="'me', a user id, or empty")
    team = forms.ModelChoiceField(queryset=Team.objects.all(), required=False)

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_assignee(self):
        value = (self.cleaned_data.get("assignee") or "").strip()
        if value == "":
            return None
        if value == "me":
            return self.user
        if not value.isdigit():
            raise forms.ValidationError(_t("Choose an agent."))
        user = get_user_model().objects.filter(pk=int(value), is_active=True).first()
        if user is None:
            raise forms.ValidationError(_t("No such agent."))
        return user


class StatusForm(forms.Form):
    status = forms.ChoiceField(choices=CaseStatus.choices)
    snoozed_until = forms.DateTimeField(
        required=False,
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )

    def clean(self):
        data = super().clean()
        if data.get("status") == CaseStatus.SNOOZED and not data.get("snoozed_until"):
            self.add_error("snoozed_until", "Say until when to snooze.")
        return data


class PriorityForm(forms.Form):
    priority = forms.TypedChoiceField(choices=Priority.choices, coerce=int)


class LabelsForm(forms.Form):
    labels = forms.ModelMultipleChoiceField(queryset=Label.objects.all(), required=False)


class MergeForm(forms.Form):
    other = forms.IntegerField(min_value=1)


class CallLogForm(forms.Form):
    """A call made or taken outside Twilio (desk phone, mobile), kept on the thread."""

    direction = forms.ChoiceField(choices=[("outbound", "We called"), ("inbound", "They called")])
    number = forms.CharField(max_length=40, required=False, label="Number")
    answered = forms.BooleanField(required=False, initial=True, label="Answered")
    minutes = forms.IntegerField(min_value=0, max_value=600, required=False, label="Minutes talked")
    note = forms.CharField(widget=forms.Textarea, max_length=5000, required=False, label="Note")
