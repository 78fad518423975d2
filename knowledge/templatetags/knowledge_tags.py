from django import template

from knowledge.selectors import bot_figures

register = template.Library()


@register.simple_tag
def kb_bot_figures(start, end):
    """The bot's figures for the dashboard's period [start, end)."""
    return bot_figures(start=start, end=end)


@register.filter
def kb_percent(value):
    return "—" if value is None else f"{value * 100:.0f} %"
