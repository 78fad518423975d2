import secrets

from django.conf import settings
from django.db import models
from django.urls import reverse

from helpdesk.fields import EncryptedJSONField


class ChannelKind(models.TextChoices):
    API = "api", "API"
    EMAIL = "email", "Email"
    FACEBOOK = "facebook", "Facebook Messenger"
    INSTAGRAM = "instagram", "Instagram"
    WHATSAPP = "whatsapp", "WhatsApp (Cloud API)"
    TWITTER = "twitter", "X / Twitter DMs"
    SMS = "sms", "SMS (Twilio)"
    WHATSAPP_TWILIO = "whatsapp_twilio", "WhatsApp (Twilio)"
    VOICE = "voice", "Phone (Twilio Voice)"
    TELEGRAM = "telegram", "Telegram"
    WEBCHAT = "webchat", "Website chat"


def _new_key() -> str:
    return secrets.token_urlsafe(18)


class Channel(models.Model):
    kind = models.CharField(max_length=20, choices=ChannelKind.choices)
    name = models.CharField(max_length=100)
    # The public part of the webhook URL: unguessable, never a secret by itself
    # (every provider's signature is still checked).
    key = models.SlugField(max_length=40, unique=True, default=_new_key, editable=False)
    credentials = EncryptedJSONField(blank=True, default=dict)
    settings = models.JSONField(default=dict, blank=True, help_text="Non-secret options.")
    is_active = models.BooleanField(default=True)
    monthly_cost = models.DecimalField(max_digits=10, decimal_places=2, default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return f"{self.name} ({self.get_kind_display()})"

    @property
    def webhook_path(self) -> str:
        return reverse("webhook", kwargs={"key": self.key})

    @property
    def webhook_url(self) -> str:
        return settings.PUBLIC_BASE_URL + self.webhook_path


class InboundEvent(models.Model):
    """The raw webhook as received, stored before we answer: nothing accepted is lost."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSED = "processed", "Processed"
        FAILED = "failed", "Failed"

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="inbound_events")
    body = models.BinaryField()
    headers = models.JSONField(default=dict)
    content_type = models.CharField(max_length=200, blank=True)
    query_string = models.TextField(blank=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # A parse error waits for a person (or a fix) before it is retried.
    retryable = models.BooleanField(default=True)
    error = models.TextField(blank=True)
    summary = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self):
        return f"Event #{self.pk} on {self.channel_id} ({self.status})"

    @property
    def body_bytes(self) -> bytes:
        return bytes(self.body)


# Email polling state lives with the email adapter; imported here so it is part of this app.
from channels_adapters.email.models import MailboxState  # noqa: E402, F401
