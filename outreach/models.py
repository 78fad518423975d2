"""Proactive messages: an outreach walks a chain of channels until one reaches the customer.

The state of every outreach and of each of its steps is a row (see
outreach/machine.py for the moves allowed): a worker that dies, a broker that
loses a task or a beat task that runs the same step again finds the row where
the last committed move left it, so a step is sent once and none is skipped.
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Goal(models.TextChoices):
    DELIVERED = "delivered", _("Delivered")
    READ = "read", _("Read")


class Source(models.TextChoices):
    AGENT = "agent", _("Agent, from a case")
    API = "api", _("API")
    CAMPAIGN = "campaign", _("Campaign")


class OutreachStatus(models.TextChoices):
    # Planned by a campaign, not started yet (waits for its turn under the throttle).
    PLANNED = "planned", _("Planned")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Reached the customer")
    REPLIED = "replied", _("Customer replied")
    EXHAUSTED = "exhausted", _("No channel reached the customer")
    CANCELLED = "cancelled", _("Cancelled")


FINISHED_STATUSES = (
    OutreachStatus.SUCCEEDED,
    OutreachStatus.REPLIED,
    OutreachStatus.EXHAUSTED,
    OutreachStatus.CANCELLED,
)


class Advance(models.TextChoices):
    """When a step gives way to the next one (a failure always does)."""

    UNDELIVERED = "undelivered", _("Not delivered within the wait")
    UNREAD = "unread", _("Not read within the wait")
    FAILED = "failed", _("Only if it failed")


class StepState(models.TextChoices):
    PENDING = "pending", _("Pending")
    # The step's message exists (queued or further): the step watches its status.
    WAITING = "waiting", _("Sent, waiting")
    SUCCEEDED = "succeeded", _("Reached the customer")
    FELL_BACK = "fell_back", _("Moved on to the next channel")
    SKIPPED = "skipped", _("Skipped")
    CANCELLED = "cancelled", _("Cancelled")


class Campaign(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SCHEDULED = "scheduled", _("Scheduled")
        RUNNING = "running", _("Running")
        PAUSED = "paused", _("Paused")
        FINISHED = "finished", _("Finished")

    name = models.CharField(_("name"), max_length=150)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.DRAFT)
    goal = models.CharField(_("goal"), max_length=10, choices=Goal.choices, default=Goal.DELIVERED)
    # {"attributes": {"plan": "pro"}, "labels": ["vip"], "channels": ["whatsapp", "email"],
    #  "last_contact_before": "2026-11-01", "last_contact_after": "2026-01-01"}
    segment = models.JSONField(_("segment"), default=dict, blank=True)
    default_language = models.CharField(_("default language"), max_length=10, default="es")
    scheduled_at = models.DateTimeField(_("scheduled at"), null=True, blank=True)
    # {"<channel kind>": messages per second}; channels not named use OUTREACH_DEFAULT_RATE.
    throttle = models.JSONField(_("throttle"), default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    planned_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")

    def __str__(self):
        return self.name


class CampaignMessage(models.Model):
    """The campaign's text in one language; the customer's language picks it."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="messages")
    language = models.CharField(_("language"), max_length=10)
    subject = models.CharField(_("email subject"), max_length=200, blank=True)
    body = models.TextField(_("text"))
    # A WhatsApp template for outside the 24-hour window: {"name", "language", "parameters"}.
    whatsapp_template = models.JSONField(_("WhatsApp template"), default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "language"], name="campaign_message_language")
        ]

    def __str__(self):
        return f"{self.campaign} [{self.language}]"


class CampaignStep(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="chain")
    number = models.PositiveSmallIntegerField(_("step"))
    channel = models.ForeignKey("channels_adapters.Channel", on_delete=models.PROTECT)
    advance_on = models.CharField(_("move on when"), max_length=12, choices=Advance.choices)
    wait_minutes = models.PositiveIntegerField(_("wait (minutes)"), default=60)

    class Meta:
        ordering = ["campaign", "number"]
        constraints = [models.UniqueConstraint(fields=["campaign", "number"], name="campaign_step_number")]

    def __str__(self):
        return f"{self.number}. {self.channel}"


class Outreach(models.Model):
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="outreaches")
    # The case an agent started it from; a reply opens or reopens a case as usual.
    case = models.ForeignKey("conversations.Case", null=True, blank=True, on_delete=models.SET_NULL)
    campaign = models.ForeignKey(
        Campaign, null=True, blank=True, on_delete=models.CASCADE, related_name="outreaches"
    )
    source = models.CharField(max_length=10, choices=Source.choices)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    body = models.TextField()
    subject = models.CharField(max_length=200, blank=True)
    # Per channel kind: {"whatsapp": {"template": {...}}}.
    options = models.JSONField(default=dict, blank=True)
    goal = models.CharField(max_length=10, choices=Goal.choices, default=Goal.DELIVERED)
    status = models.CharField(
        max_length=10, choices=OutreachStatus.choices, default=OutreachStatus.RUNNING, db_index=True
    )
    stop_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["customer", "status"]),
            models.Index(fields=["campaign", "status"]),
        ]
        constraints = [
            # A campaign writes to a customer once, however often it is planned.
            models.UniqueConstraint(
                fields=["campaign", "customer"],
                condition=models.Q(campaign__isnull=False),
                name="outreach_once_per_campaign_customer",
            )
        ]

    def __str__(self):
        return f"Outreach #{self.pk}"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES


class OutreachStep(models.Model):
    outreach = models.ForeignKey(Outreach, on_delete=models.CASCADE, related_name="steps")
    number = models.PositiveSmallIntegerField()
    channel = models.ForeignKey("channels_adapters.Channel", on_delete=models.PROTECT, related_name="+")
    advance_on = models.CharField(max_length=12, choices=Advance.choices)
    wait_minutes = models.PositiveIntegerField(default=60)
    state = models.CharField(max_length=10, choices=StepState.choices, default=StepState.PENDING)
    # Written in the claim's transaction: a step with a message was claimed, once.
    message = models.OneToOneField(
        "conversations.Message",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="outreach_step",
    )
    # Not before (quiet hours, the channel's throttle).
    due_at = models.DateTimeField(null=True, blank=True)
    # The throttle's one-second slot reserved for this step's send (campaigns): kept, so a
    # step put off to its slot does not reserve another one when it comes back.
    slot_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    # When the wait for its goal ends and the next channel is tried.
    deadline_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["outreach_id", "number"]
        constraints = [
            # One row per step: two workers claiming the same step cannot both write one.
            models.UniqueConstraint(fields=["outreach", "number"], name="outreach_step_number_unique")
        ]
        indexes = [
            models.Index(fields=["state", "deadline_at"]),
            models.Index(fields=["state", "due_at"]),
        ]

    def __str__(self):
        return f"Step {self.number} of outreach #{self.outreach_id}: {self.state}"


class ConsentStatus(models.TextChoices):
    OPTED_IN = "opted_in", _("Opted in")
    OPTED_OUT = "opted_out", _("Opted out")


class Consent(models.Model):
    """A customer's yes or no to proactive messages on one kind of channel."""

    class Source(models.TextChoices):
        KEYWORD = "keyword", _("Keyword in a message")
        LINK = "link", _("Unsubscribe link")
        AGENT = "agent", _("Agent")
        API = "api", _("API")

    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="consents")
    channel_kind = models.CharField(max_length=20)
    status = models.CharField(max_length=10, choices=ConsentStatus.choices)
    source = models.CharField(max_length=10, choices=Source.choices)
    # What the customer wrote or did: "STOP", "link", the agent's name.
    evidence = models.CharField(max_length=200, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "channel_kind"], name="consent_customer_channel_kind")
        ]

    def __str__(self):
        return f"{self.customer_id} {self.channel_kind}: {self.status}"
