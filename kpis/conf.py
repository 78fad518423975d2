"""The kpis app's settings (settings.KPIS), read at call time so tests can override them."""

from django.conf import settings


def kpis_conf(name):
    return settings.KPIS[name]
