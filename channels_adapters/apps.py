from django.apps import AppConfig


class ChannelsAdaptersConfig(AppConfig):
    name = "channels_adapters"
    verbose_name = "Channels"
    default_auto_field = "django.db.models.BigAutoField"
