"""The pinned boxes included by the inbox templates (one {% include %} each)."""

from django import template

from commitments import selectors

register = template.Library()


@register.simple_tag(takes_context=True)
def open_commitments(context, customer):
    """The customer's open commitments this user may see; read once per page for both boxes."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if customer is None or user is None:
        return []
    cache = getattr(request, "_open_commitments", None)
    if cache is None:
        cache = request._open_commitments = {}
    if customer.pk not in cache:
        cache[customer.pk] = selectors.customer_open_commitments(user=user, customer_id=customer.pk)
    return cache[customer.pk]
