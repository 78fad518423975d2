from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="teams", blank=True)

    def __str__(self):
        return self.name


class Label(models.Model):
    name = models.CharField(max_length=60, unique=True)
    color = models.CharField(max_length=7, default="#6b7280")

    def __str__(self):
        return self.name


class Thread(models.Model):
    """The customer's one timeline: every message on every channel."""

    customer = models.OneToOneField("customers.Customer", on_delete=models.CASCADE, related_name="thread")
    created_at = models.DateTimeField(auto_now_add=True)
    last_message_at = models.DateTimeField(null=True, blank=True, db_index=True)

    def __str__(self):
        return f"Thread of {self.customer}"


class CaseStatus(models.TextChoices):
    OPEN = "open", "Open"
    PENDING = "pending", "Pending"
    SNOOZED = "snoozed", "Snoozed"
    RESOLVED = "resolved", "Resolved"


class Priority(models.IntegerChoices):
    LOW = 0, "Low"
    NORMAL = 1, "Normal"
    HIGH = 2, "High"
    URGENT = 3, "Urgent"


class Case(models.Model):
    """An episode on the thread, from the customer's first word to resolution."""

    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="cases")
    status = models.CharField(
        max_length=10, choices=CaseStatus.choices, default=CaseStatus.OPEN, db_index=True
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_cases",
    )
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL)
    priority = models.SmallIntegerField(choices=Priority.choices, default=Priority.NORMAL)
    labels = models.ManyToManyField(Label, blank=True)
    origin_channel = models.ForeignKey(
        "channels_adapters.Channel", null=True, blank=True, on_delete=models.SET_NULL
    )
    subject = models.CharField(max_length=300, blank=True)
    opened_at = models.DateTimeField(db_index=True)
    first_response_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True, db_index=True)
    reopen_count = models.PositiveIntegerField(default=0)
    snoozed_until = models.DateTimeField(null=True, blank=True)
    # The oldest customer message still waiting for an answer; the inbox sorts on it.
    waiting_since = models.DateTimeField(null=True, blank=True, db_index=True)
    # The waiting_since the latest response ended: a response that turns out
    # undelivered (failed after "sent") puts the case back waiting from here.
    last_wait_started_at = models.DateTimeField(null=True, blank=True)
    last_message_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            # At most one case in progress per thread: an inbound message always
            # knows which case it belongs to.
            models.UniqueConstraint(
                fields=["thread"],
                condition=~Q(status="resolved"),
                name="case_one_unresolved_per_thread",
            )
        ]
        indexes = [models.Index(fields=["status", "waiting_since"])]

    def __str__(self):
        return f"Case #{self.pk}"

    @property
    def is_resolved(self) -> bool:
        return self.status == CaseStatus.RESOLVED


class Direction(models.TextChoices):
    IN = "in", "Inbound"
    OUT = "out", "Outbound"


class MessageKind(models.TextChoices):
    TEXT = "text", "Text"
    MEDIA = "media", "Media"
    CALL = "call", "Call"
    VOICEMAIL = "voicemail", "Voicemail"
    NOTE = "note", "Internal note"
    SYSTEM = "system", "System event"


# Inbound messages that do not say where to answer by default: notes and events
# are ours, and a call's line carries no written reply.
NOT_A_REPLY_SOURCE = (MessageKind.NOTE, MessageKind.SYSTEM, MessageKind.CALL, MessageKind.VOICEMAIL)


class Author(models.TextChoices):
    AGENT = "agent", "Agent"
    CUSTOMER = "customer", "Customer"
    BOT = "bot", "Bot or automation"


class DeliveryStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    READ = "read", "Read"
    FAILED = "failed", "Failed"
    # The send was interrupted (a crash between the provider's call and its
    # answer): the provider may have the message. A status callback settles it;
    # until then the agent is told, and sending again needs their confirmation.
    UNKNOWN = "unknown", _("May have been sent")


# Delivery status only moves forward; a late callback never downgrades it.
DELIVERY_RANK = {
    DeliveryStatus.QUEUED: 0,
    DeliveryStatus.UNKNOWN: 0,
    DeliveryStatus.SENT: 1,
    DeliveryStatus.DELIVERED: 2,
    DeliveryStatus.READ: 3,
}


# A reply counts as a response (first response, end of the wait, FCR) only once
# the provider accepted it: queued, unknown and failed messages never reached anyone.
RESPONSE_STATUSES = (DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.READ)
# An agent message that reached the customer (for the KPIs' "agent message"): a
# reply the provider accepted, or a call that was answered (calls have no status).
REACHED_CUSTOMER = Q(status__in=RESPONSE_STATUSES) | Q(kind=MessageKind.CALL, meta__answered=True)


class Message(models.Model):
    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="messages")
    case = models.ForeignKey(Case, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages")
    channel = models.ForeignKey(
        "channels_adapters.Channel",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="messages",
    )
    # The customer's address the message came from or goes to.
    identity = models.ForeignKey("customers.Identity", null=True, blank=True, on_delete=models.SET_NULL)
    direction = models.CharField(max_length=3, choices=Direction.choices)
    kind = models.CharField(max_length=10, choices=MessageKind.choices, default=MessageKind.TEXT)
    author = models.CharField(max_length=10, choices=Author.choices)
    author_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    body = models.TextField(blank=True)
    html = models.TextField(blank=True, help_text="Sanitized HTML, safe to render.")
    attachments = models.JSONField(default=list, blank=True)
    meta = models.JSONField(default=dict, blank=True)
    external_id = models.CharField(max_length=255, null=True, blank=True)
    provider_timestamp = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, null=True, blank=True, db_index=True
    )
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    # Outbound bookkeeping: the claim makes a send happen at most once.
    send_claimed_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints = [
            # A provider's retry never makes a second message.
            models.UniqueConstraint(
                fields=["channel", "external_id"], name="message_channel_external_id_unique"
            )
        ]
        indexes = [
            models.Index(fields=["thread", "created_at"]),
            models.Index(fields=["case", "created_at"]),
        ]
        ordering = ["created_at", "id"]

    def __str__(self):
        return f"{self.direction} {self.kind} #{self.pk}"

    @property
    def counts_as_agent_message(self) -> bool:
        return (
            self.author == Author.AGENT
            and self.direction == Direction.OUT
            and self.kind not in (MessageKind.NOTE, MessageKind.SYSTEM)
        )


class DeliveryAttempt(models.Model):
    """One try at handing a message to its provider; every try is recorded."""

    class Outcome(models.TextChoices):
        PENDING = "pending", "In progress"
        SENT = "sent", "Sent"
        RETRY = "retry", "Failed, will retry"
        FAILED = "failed", "Failed"
        UNKNOWN = "unknown", _("Interrupted, outcome unknown")

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="delivery_attempts")
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.PENDING)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    # The Celery node that made the attempt: when that node starts again, its
    # attempts still pending were cut short by the crash, no need to wait.
    worker = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["message_id", "number"]
        constraints = [models.UniqueConstraint(fields=["message", "number"], name="attempt_number_unique")]

    def __str__(self):
        return f"Attempt {self.number} of message #{self.message_id}: {self.outcome}"


class CannedResponse(models.Model):
    """A saved answer agents insert by shortcut; `{{customer.first_name}}` is filled in."""

    shortcut = models.SlugField(max_length=40, unique=True, help_text="Typed after '/' in the reply box.")
    title = models.CharField(max_length=120)
    body = models.TextField()
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.CASCADE, help_text="Empty: everyone sees it."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["shortcut"]

    def __str__(self):
        return f"/{self.shortcut}"


class Mention(models.Model):
    """An @mention of a colleague in an internal note: their notification."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="mentions")
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="mentions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mentions")
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["message", "user"], name="mention_once_per_note")]
        indexes = [models.Index(fields=["user", "read_at"])]

    def __str__(self):
        return f"@{self.user_id} in message #{self.message_id}"


class CaseRead(models.Model):
    """When an agent last looked at a case: what came after is unread for them."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="reads")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="case_reads")
    read_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["case", "user"], name="case_read_once_per_agent")]

    def __str__(self):
        return f"{self.user_id} read case #{self.case_id} at {self.read_at}"
