"""Outbound webhook subscriptions and their outbox (docs/webhooks.md)."""

import base64
import secrets

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from helpdesk.fields import EncryptedJSONField


class Event(models.TextChoices):
    MESSAGE_CREATED = "message.created", _("Message created")
    MESSAGE_STATUS_CHANGED = "message.status_changed", _("Message delivery status changed")
    CASE_OPENED = "case.opened", _("Case opened")
    CASE_ASSIGNED = "case.assigned", _("Case assigned")
    CASE_RESOLVED = "case.resolved", _("Case resolved")
    CASE_REOPENED = "case.reopened", _("Case reopened")
    CUSTOMER_CREATED = "customer.created", _("Customer created")
    CUSTOMER_MERGED = "customer.merged", _("Customers merged")
    SURVEY_ANSWERED = "survey.answered", _("Survey answered")
    COMMITMENT_CREATED = "commitment.created", _("Commitment made to a customer")
    COMMITMENT_FULFILLED = "commitment.fulfilled", _("Commitment fulfilled")
    COMMITMENT_WITHDRAWN = "commitment.withdrawn", _("Commitment withdrawn")
    RULE_WEBHOOK = "automation.rule_webhook", _("An automation rule called this webhook")


def secret_generate() -> str:
    # Standard Webhooks: "whsec_" + base64 of 24-64 random bytes.
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class WebhookSubscription(models.Model):
    url = models.URLField(_("URL"), max_length=2000)
    description = models.CharField(_("description"), max_length=200, blank=True)
    events = models.JSONField(_("events"), default=list, help_text=_("Event types sent to this URL."))
    # Kept encrypted at rest like channel credentials: it must be readable to sign.
    secret_store = EncryptedJSONField(default=dict, editable=False, verbose_name=_("secret store"))
    is_active = models.BooleanField(
        _("active"), default=True, help_text=_("Switched off: events are no longer recorded for it.")
    )
    # Set by the sender after too many failures in a row; events are still
    # recorded meanwhile and go out, in order, once an admin resumes it.
    paused_at = models.DateTimeField(_("paused at"), null=True, blank=True)
    paused_reason = models.TextField(_("paused because"), blank=True)
    consecutive_failures = models.PositiveIntegerField(_("failures in a row"), default=0)
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("webhook subscription")
        verbose_name_plural = _("webhook subscriptions")
        ordering = ["pk"]

    def __str__(self):
        return self.description or self.url

    @property
    def secret(self) -> str:
        return self.secret_store.get("secret", "")

    @secret.setter
    def secret(self, value: str) -> None:
        self.secret_store = {"secret": value}


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    DELIVERED = "delivered", _("Delivered")
    # An admin gave up on it, so the deliveries after it in its line can go.
    DISCARDED = "discarded", _("Discarded")


class WebhookDelivery(models.Model):
    """One event for one subscription: the outbox row, written in the change's transaction."""

    subscription = models.ForeignKey(
        WebhookSubscription,
        on_delete=models.CASCADE,
        related_name="deliveries",
        verbose_name=_("subscription"),
    )
    # The `webhook-id` header: the same for every subscription and every resend of one event.
    event_id = models.CharField(_("webhook id"), max_length=64, db_index=True)
    event = models.CharField(_("event"), max_length=40, choices=Event.choices)
    payload = models.JSONField(_("payload"))
    # Deliveries of one subscription with one key go out one at a time, in id order.
    ordering_key = models.CharField(_("ordering key"), max_length=100)
    status = models.CharField(
        _("status"), max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    created_at = models.DateTimeField(_("created at"), db_index=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    # Set while a worker sends it: a second worker (a re-drive, a duplicate task) leaves it alone.
    claimed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("claimed at"))
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    replay_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="replays",
        verbose_name=_("replay of"),
    )

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-pk"]
        indexes = [
            # The line a delivery waits in: earlier pending ones of its subscription and key.
            models.Index(
                fields=["subscription", "ordering_key", "id"],
                condition=Q(status="pending"),
                name="webhook_delivery_line",
            ),
        ]

    def __str__(self):
        return f"{self.event} #{self.pk} to {self.subscription_id}"


class WebhookAttempt(models.Model):
    """One POST of a delivery, whatever came of it."""

    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log", verbose_name=_("delivery")
    )
    number = models.PositiveIntegerField(_("number"))
    at = models.DateTimeField(_("at"))
    status_code = models.PositiveSmallIntegerField(_("HTTP status"), null=True, blank=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), null=True, blank=True)
    response_excerpt = models.TextField(_("response excerpt"), blank=True)
    error = models.TextField(_("error"), blank=True)
    succeeded = models.BooleanField(_("succeeded"), default=False)

    class Meta:
        verbose_name = _("webhook attempt")
        verbose_name_plural = _("webhook attempts")
        ordering = ["delivery_id", "number"]

    def __str__(self):
        return f"Attempt {self.number} of delivery #{self.delivery_id}"
