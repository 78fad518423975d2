from django import template
from django.template.loader import render_to_string
from django.utils.translation import get_language

from channels_adapters.models import Channel
from outreach.forms import CaseOutreachForm
from outreach.selectors import customer_consents, customer_outreaches

register = template.Library()

# The form's fields, rendered once per language and set of active channels: the form
# does not depend on the case, and Django renders each of its ~40 options through a
# template (a third of the case page's CPU, bench/scale.py). Keyed by what the HTML
# shows, so a renamed or (de)activated channel renders anew.
_FIELDS_HTML: dict[tuple, str] = {}
_FIELDS_HTML_MAX = 64


def _form_fields_html(channels: list[Channel] | None) -> str:
    if channels is None:
        channels = list(Channel.objects.filter(is_active=True).defer("credentials").order_by("name"))
    key = (get_language(), tuple((c.pk, str(c)) for c in channels))
    html = _FIELDS_HTML.get(key)
    if html is None:
        form = CaseOutreachForm(channels=channels)
        html = render_to_string("outreach/_case_form_fields.html", {"form": form})
        if len(_FIELDS_HTML) >= _FIELDS_HTML_MAX:
            _FIELDS_HTML.clear()
        _FIELDS_HTML[key] = html
    return html


@register.inclusion_tag("outreach/_case_panel.html", takes_context=True)
def outreach_case_panel(context, case, customer):
    """The case page's outreach section (the case page already checked the agent may see it).

    `active_channels` in the page's context, when there: the active channels by name,
    already read for the reply box."""
    return {
        "case": case,
        "outreaches": customer_outreaches(customer_id=customer.pk, limit=5),
        "consents": customer_consents(customer_id=customer.pk),
        "form_fields": _form_fields_html(context.get("active_channels")),
    }
