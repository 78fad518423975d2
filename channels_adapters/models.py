import secrets

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from helpdesk.fields import EncryptedJSONField


class ChannelKind(models.TextChoices):
    API = "api", _("API")
    EMAIL = "email", _("Email")
    FACEBOOK = "facebook", _("Facebook Messenger")
    INSTAGRAM = "instagram", _("Instagram")
    WHATSAPP = "whatsapp", _("WhatsApp (Cloud API)")
    TWITTER = "twitter", _("X / Twitter DMs")
    SMS = "sms", _("SMS (Twilio)")
    WHATSAPP_TWILIO = "whatsapp_twilio", _("WhatsApp (Twilio)")
    VOICE = "voice", _("Phone (Twilio Voice)")
    TELEGRAM = "telegram", _("Telegram")
    WEBCHAT = "webchat", _("Website chat")


def _new_key() -> str:
    return secrets.token_urlsafe(18)


class Channel(models.Model):
    kind = models.CharField(max_length=20, choices=ChannelKind.choices, verbose_name=_("kind"))
    name = models.CharField(max_length=100, verbose_name=_("name"))
    # The public part of the webhook URL: unguessable, never a secret by itself
    # (every provider's signature is still checked).
    key = models.SlugField(
        max_length=40, unique=True, default=_new_key, editable=False, verbose_name=_("key")
    )
    credentials = EncryptedJSONField(blank=True, default=dict, verbose_name=_("credentials"))
    settings = models.JSONField(
        default=dict, blank=True, help_text=_("Non-secret options."), verbose_name=_("settings")
    )
    is_active = models.BooleanField(default=True, verbose_name=_("is active"))
    monthly_cost = models.DecimalField(
        max_digits=10, decimal_places=2, default=0, verbose_name=_("monthly cost")
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        ordering = ["name"]
        verbose_name = _("channel")
        verbose_name_plural = _("channels")

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
        PENDING = "pending", _("Pending")
        PROCESSED = "processed", _("Processed")
        FAILED = "failed", _("Failed")

    channel = models.ForeignKey(
        Channel, on_delete=models.CASCADE, related_name="inbound_events", verbose_name=_("channel")
    )
    body = models.BinaryField(verbose_name=_("body"))
    headers = models.JSONField(default=dict, verbose_name=_("headers"))
    content_type = models.CharField(max_length=200, blank=True, verbose_name=_("content type"))
    query_string = models.TextField(blank=True, verbose_name=_("query string"))
    received_at = models.DateTimeField(auto_now_add=True, db_index=True, verbose_name=_("received at"))
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True, verbose_name=_("status")
    )
    processed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("processed at"))
    attempts = models.PositiveSmallIntegerField(default=0, verbose_name=_("attempts"))
    # A parse error waits for a person (or a fix) before it is retried.
    retryable = models.BooleanField(default=True, verbose_name=_("retryable"))
    error = models.TextField(blank=True, verbose_name=_("error"))
    summary = models.JSONField(default=dict, blank=True, verbose_name=_("summary"))

    class Meta:
        ordering = ["-received_at"]
        verbose_name = _("inbound event")
        verbose_name_plural = _("inbound events")

    def __str__(self):
        return f"Event #{self.pk} on {self.channel_id} ({self.status})"

    @property
    def body_bytes(self) -> bytes:
        return bytes(self.body)


# Email polling state lives with the email adapter; imported here so it is part of this app.
from channels_adapters.email.models import MailboxState  # noqa: E402, F401
