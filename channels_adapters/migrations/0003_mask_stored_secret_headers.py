"""Events stored before secret headers were masked still hold Telegram's secret token."""

from django.db import migrations

SECRET_HEADERS = {"x-telegram-bot-api-secret-token", "x-api-key", "x-auth-token", "x-webhook-secret"}
DROPPED = {"cookie", "authorization", "proxy-authorization"}


def mask(apps, schema_editor):
    InboundEvent = apps.get_model("channels_adapters", "InboundEvent")
    for event in InboundEvent.objects.only("pk", "headers").iterator(chunk_size=2000):
        headers = event.headers or {}
        if not any(k.lower() in SECRET_HEADERS | DROPPED for k in headers):
            continue
        event.headers = {
            k: ("[masked]" if k.lower() in SECRET_HEADERS else v)
            for k, v in headers.items()
            if k.lower() not in DROPPED
        }
        event.save(update_fields=["headers"])


class Migration(migrations.Migration):
    dependencies = [("channels_adapters", "0002_mailboxstate")]
    operations = [migrations.RunPython(mask, migrations.RunPython.noop)]
