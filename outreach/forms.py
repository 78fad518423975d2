from django import forms
from django.utils.translation import gettext_lazy as _

from channels_adapters.models import Channel
from outreach.models import Advance, Goal

CHAIN_LENGTH = 3


class CaseOutreachForm(forms.Form):
    """The case page's "follow up on another channel" form: up to three channels, in order."""

    body = forms.CharField(
        label=_("Follow-up text"), widget=forms.Textarea(attrs={"rows": 3}), max_length=4096
    )
    goal = forms.ChoiceField(label=_("Stop when the message is"), choices=Goal.choices, initial=Goal.READ)

    def __init__(self, *args, **kwargs):
        # Its own ids: the case page's reply box has fields of the same names.
        kwargs.setdefault("auto_id", "outreach_%s")
        super().__init__(*args, **kwargs)
        channels = Channel.objects.filter(is_active=True).defer("credentials").order_by("name")
        for n in range(1, CHAIN_LENGTH + 1):
            self.fields[f"channel_{n}"] = forms.ModelChoiceField(
                label=_("Channel %(n)s") % {"n": n}, queryset=channels, required=n == 1
            )
            self.fields[f"advance_on_{n}"] = forms.ChoiceField(
                label=_("Move on when"), choices=Advance.choices, initial=Advance.UNREAD
            )
            self.fields[f"wait_minutes_{n}"] = forms.IntegerField(
                label=_("Wait (minutes)"), min_value=0, max_value=60 * 24 * 14, initial=240
            )

    def chain(self) -> list[dict]:
        data = self.cleaned_data
        return [
            {
                "channel": data[f"channel_{n}"].pk,
                "advance_on": data[f"advance_on_{n}"],
                "wait_minutes": data[f"wait_minutes_{n}"],
            }
            for n in range(1, CHAIN_LENGTH + 1)
            if data.get(f"channel_{n}")
        ]
