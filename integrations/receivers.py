"""The integrations app listens to the core: it never is imported by it."""

from django.db.models.signals import post_delete, post_save

from conversations.signals import domain_event
from integrations import selectors, services
from integrations.models import WebhookSubscription


def on_domain_event(sender, event, payload, ordering_key, **kwargs):
    # No try/except: this writes the outbox row in the change's transaction, and a
    # change whose event cannot be recorded must roll back rather than lose it.
    services.webhook_event_record(event=event, data=payload, ordering_key=ordering_key)


def on_subscription_changed(sender, **kwargs):
    selectors.subscriptions_cache.clear()


def connect():
    domain_event.connect(on_domain_event, dispatch_uid="integrations.domain_event")
    post_save.connect(
        on_subscription_changed, sender=WebhookSubscription, dispatch_uid="integrations.sub_saved"
    )
    post_delete.connect(
        on_subscription_changed, sender=WebhookSubscription, dispatch_uid="integrations.sub_deleted"
    )
