from django.apps import AppConfig


class OutreachConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "outreach"
    verbose_name = "Outreach and campaigns"

    def ready(self):
        # The core announces, this app listens (DESIGN.md "Files to copy the shape of").
        from outreach import receivers

        receivers.connect()
