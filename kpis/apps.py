from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class KpisConfig(AppConfig):
    name = "kpis"
    verbose_name = _("KPIs")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from kpis import receivers

        receivers.connect()
