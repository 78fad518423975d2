from django import template

from outreach.forms import CaseOutreachForm
from outreach.selectors import customer_consents, customer_outreaches

register = template.Library()


@register.inclusion_tag("outreach/_case_panel.html")
def outreach_case_panel(case, customer):
    """The case page's outreach section (the case page already checked the agent may see it)."""
    return {
        "case": case,
        "outreaches": customer_outreaches(customer_id=customer.pk, limit=5),
        "consents": customer_consents(customer_id=customer.pk),
        "form": CaseOutreachForm(),
    }
