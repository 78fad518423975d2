from django import template

from automation import selectors

register = template.Library()


@register.inclusion_tag("automation/_macro_buttons.html", takes_context=True)
def macro_buttons(context, case):
    user = context["request"].user
    return {
        "case": case,
        "macros": list(selectors.macros_for(user=user)),
        "csrf_token": context.get("csrf_token"),
    }


@register.inclusion_tag("automation/_bulk_form.html", takes_context=True)
def bulk_form(context):
    user = context["request"].user
    return {**selectors.bulk_choices(user=user), "csrf_token": context.get("csrf_token")}


@register.inclusion_tag("automation/_away.html", takes_context=True)
def away_toggle(context):
    user = context["request"].user
    presence = selectors.presence_of(user=user)
    return {"away": bool(presence and presence.away), "csrf_token": context.get("csrf_token")}
