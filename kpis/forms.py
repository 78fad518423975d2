from datetime import timedelta

from django import forms
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from channels_adapters.models import Channel
from kpis.models import SURVEY_SCALE
from kpis.selectors import KpiFilter

MAX_RANGE_DAYS = 366
DEFAULT_RANGE_DAYS = 30


class KpiQueryForm(forms.Form):
    """?from=YYYY-MM-DD&to=YYYY-MM-DD[&channel=<key>][&agent=<id>][&team=<id>]; the period is [from, to)."""

    channel = forms.CharField(required=False, max_length=40)
    agent = forms.IntegerField(required=False, min_value=1)
    team = forms.IntegerField(required=False, min_value=1)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # "from" is a Python keyword: the field is added by name.
        self.fields = {
            "from": forms.DateField(required=False, input_formats=["%Y-%m-%d"]),
            "to": forms.DateField(required=False, input_formats=["%Y-%m-%d"]),
            **self.fields,
        }

    @staticmethod
    def defaults() -> dict:
        end = timezone.localdate() + timedelta(days=1)
        return {"start": end - timedelta(days=DEFAULT_RANGE_DAYS), "end": end, "flt": KpiFilter()}

    def clean(self):
        data = super().clean()
        default = self.defaults()
        end = data.get("to") or default["end"]
        start = data.get("from") or end - timedelta(days=DEFAULT_RANGE_DAYS)
        if start >= end:
            raise forms.ValidationError(_("'from' must be before 'to' (the period is [from, to))."))
        if (end - start).days > MAX_RANGE_DAYS:
            raise forms.ValidationError(_("A period is at most %(days)s days.") % {"days": MAX_RANGE_DAYS})
        channel_id = None
        if data.get("channel"):
            channel_id = Channel.objects.filter(key=data["channel"]).values_list("pk", flat=True).first()
            if channel_id is None:
                self.add_error("channel", _("No channel has this key."))
        data["start"], data["end"] = start, end
        data["flt"] = KpiFilter(channel_id=channel_id, agent_id=data.get("agent"), team_id=data.get("team"))
        return data


class SurveyAnswerForm(forms.Form):
    score = forms.TypedChoiceField(coerce=int, widget=forms.RadioSelect, label=gettext_lazy("Your answer"))

    def __init__(self, *args, kind: str, **kwargs):
        super().__init__(*args, **kwargs)
        low, high = SURVEY_SCALE[kind]
        self.fields["score"].choices = [(n, str(n)) for n in range(low, high + 1)]
