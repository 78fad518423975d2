from functools import cache

from django import forms
from django.forms.models import ModelChoiceIterator
from django.utils.translation import gettext_lazy as _

from channels_adapters.models import Channel
from outreach.models import Advance, Goal

CHAIN_LENGTH = 3


class _RowsReadOnce(ModelChoiceIterator):
    """A select's options from rows the form reads once for all its channel selects: the
    queryset's own iterator opens a server-side cursor per select (three on every case
    page, bench/scale.py's profile)."""

    def __iter__(self):
        if self.field.empty_label is not None:
            yield ("", self.field.empty_label)
        for obj in self.field.rows():
            yield self.choice(obj)

    def __len__(self):
        return len(self.field.rows()) + (self.field.empty_label is not None)


class _ChannelChoiceField(forms.ModelChoiceField):
    iterator = _RowsReadOnce

    def __init__(self, *args, rows, **kwargs):
        super().__init__(*args, **kwargs)
        self.rows = rows  # validation still asks the queryset


class CaseOutreachForm(forms.Form):
    """The case page's "follow up on another channel" form: up to three channels, in order."""

    body = forms.CharField(
        label=_("Follow-up text"), widget=forms.Textarea(attrs={"rows": 3}), max_length=4096
    )
    goal = forms.ChoiceField(label=_("Stop when the message is"), choices=Goal.choices, initial=Goal.READ)

    def __init__(self, *args, channels: list[Channel] | None = None, **kwargs):
        """`channels`: the active channels when the caller has read them already."""
        # Its own ids: the case page's reply box has fields of the same names.
        kwargs.setdefault("auto_id", "outreach_%s")
        super().__init__(*args, **kwargs)
        queryset = Channel.objects.filter(is_active=True).defer("credentials").order_by("name")
        rows = cache(lambda: list(queryset) if channels is None else channels)
        for n in range(1, CHAIN_LENGTH + 1):
            self.fields[f"channel_{n}"] = _ChannelChoiceField(
                label=_("Channel %(n)s") % {"n": n}, queryset=queryset, required=n == 1, rows=rows
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
