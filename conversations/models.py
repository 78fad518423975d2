from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True, verbose_name=_("name"))
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="teams", blank=True, verbose_name=_("members")
    )

    class Meta:
        verbose_name = _("team")
        verbose_name_plural = _("teams")

    def __str__(self):
        return self.name


class Label(models.Model):
    name = models.CharField(max_length=60, unique=True, verbose_name=_("name"))
    color = models.CharField(max_length=7, default="#6b7280", verbose_name=_("color"))

    class Meta:
        verbose_name = _("label")
        verbose_name_plural = _("labels")

    def __str__(self):
        return self.name


class Thread(models.Model):
    """The customer's one timeline: every message on every channel."""

    customer = models.OneToOneField(
        "customers.Customer", on_delete=models.CASCADE, related_name="thread", verbose_name=_("customer")
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    last_message_at = models.DateTimeField(
        null=True, blank=True, db_index=True, verbose_name=_("last message at")
    )

    class Meta:
        verbose_name = _("thread")
        verbose_name_plural = _("threads")

    def __str__(self):
        return f"Thread of {self.customer}"


class CaseStatus(models.TextChoices):
    OPEN = "open", _("Open")
    PENDING = "pending", _("Pending")
    SNOOZED = "snoozed", _("Snoozed")
    RESOLVED = "resolved", _("Resolved")


class Priority(models.IntegerChoices):
    LOW = 0, _("Low")
    NORMAL = 1, _("Normal")
    HIGH = 2, _("High")
    URGENT = 3, _("Urgent")


class Case(models.Model):
    """An episode on the thread, from the customer's first word to resolution."""

    thread = models.ForeignKey(
        Thread, on_delete=models.CASCADE, related_name="cases", verbose_name=_("thread")
    )
    status = models.CharField(
        max_length=10,
        choices=CaseStatus.choices,
        default=CaseStatus.OPEN,
        db_index=True,
        verbose_name=_("status"),
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_cases",
        verbose_name=_("assignee"),
    )
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, verbose_name=_("team"))
    priority = models.SmallIntegerField(
        choices=Priority.choices, default=Priority.NORMAL, verbose_name=_("priority")
    )
    labels = models.ManyToManyField(Label, blank=True, verbose_name=_("labels"))
    origin_channel = models.ForeignKey(
        "channels_adapters.Channel",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        verbose_name=_("origin channel"),
    )
    subject = models.CharField(max_length=300, blank=True, verbose_name=_("subject"))
    opened_at = models.DateTimeField(db_index=True, verbose_name=_("opened at"))
    first_response_at = models.DateTimeField(null=True, blank=True, verbose_name=_("first response at"))
    resolved_at = models.DateTimeField(null=True, blank=True, db_index=True, verbose_name=_("resolved at"))
    reopen_count = models.PositiveIntegerField(default=0, verbose_name=_("reopen count"))
    snoozed_until = models.DateTimeField(null=True, blank=True, verbose_name=_("snoozed until"))
    # The oldest customer message still waiting for an answer; the inbox sorts on it.
    waiting_since = models.DateTimeField(
        null=True, blank=True, db_index=True, verbose_name=_("waiting since")
    )
    # The waiting_since the latest response ended: a response that turns out
    # undelivered (failed after "sent") puts the case back waiting from here.
    last_wait_started_at = models.DateTimeField(null=True, blank=True, verbose_name=_("last wait started at"))
    last_message_at = models.DateTimeField(null=True, blank=True, verbose_name=_("last message at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

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
        # Also, PostgreSQL only (migration 0007): case_last_message_desc, the All view's order.
        indexes = [models.Index(fields=["status", "waiting_since"])]
        verbose_name = _("case")
        verbose_name_plural = _("cases")

    def __str__(self):
        return f"Case #{self.pk}"

    @property
    def is_resolved(self) -> bool:
        return self.status == CaseStatus.RESOLVED


class Direction(models.TextChoices):
    IN = "in", _("Inbound")
    OUT = "out", _("Outbound")


class MessageKind(models.TextChoices):
    TEXT = "text", _("Text")
    MEDIA = "media", _("Media")
    CALL = "call", _("Call")
    VOICEMAIL = "voicemail", _("Voicemail")
    NOTE = "note", _("Internal note")
    SYSTEM = "system", _("System event")


# Inbound messages that do not say where to answer by default: notes and events
# are ours, and a call's line carries no written reply.
NOT_A_REPLY_SOURCE = (MessageKind.NOTE, MessageKind.SYSTEM, MessageKind.CALL, MessageKind.VOICEMAIL)


class Author(models.TextChoices):
    AGENT = "agent", _("Agent")
    CUSTOMER = "customer", _("Customer")
    BOT = "bot", _("Bot or automation")


class DeliveryStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    SENT = "sent", _("Sent")
    DELIVERED = "delivered", _("Delivered")
    READ = "read", _("Read")
    FAILED = "failed", _("Failed")
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
    thread = models.ForeignKey(
        Thread, on_delete=models.CASCADE, related_name="messages", verbose_name=_("thread")
    )
    case = models.ForeignKey(
        Case,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="messages",
        verbose_name=_("case"),
    )
    channel = models.ForeignKey(
        "channels_adapters.Channel",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="messages",
        verbose_name=_("channel"),
    )
    # The customer's address the message came from or goes to.
    identity = models.ForeignKey(
        "customers.Identity", null=True, blank=True, on_delete=models.SET_NULL, verbose_name=_("identity")
    )
    direction = models.CharField(max_length=3, choices=Direction.choices, verbose_name=_("direction"))
    kind = models.CharField(
        max_length=10, choices=MessageKind.choices, default=MessageKind.TEXT, verbose_name=_("kind")
    )
    author = models.CharField(max_length=10, choices=Author.choices, verbose_name=_("author"))
    author_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        verbose_name=_("author user"),
    )
    body = models.TextField(blank=True, verbose_name=_("body"))
    html = models.TextField(
        blank=True, help_text=_("Sanitized HTML, safe to render."), verbose_name=_("html")
    )
    attachments = models.JSONField(default=list, blank=True, verbose_name=_("attachments"))
    meta = models.JSONField(default=dict, blank=True, verbose_name=_("meta"))
    external_id = models.CharField(max_length=255, null=True, blank=True, verbose_name=_("external id"))
    provider_timestamp = models.DateTimeField(null=True, blank=True, verbose_name=_("provider timestamp"))
    status = models.CharField(
        max_length=10,
        choices=DeliveryStatus.choices,
        null=True,
        blank=True,
        db_index=True,
        verbose_name=_("status"),
    )
    error = models.TextField(blank=True, verbose_name=_("error"))
    created_at = models.DateTimeField(db_index=True, verbose_name=_("created at"))
    sent_at = models.DateTimeField(null=True, blank=True, verbose_name=_("sent at"))
    delivered_at = models.DateTimeField(null=True, blank=True, verbose_name=_("delivered at"))
    read_at = models.DateTimeField(null=True, blank=True, verbose_name=_("read at"))
    # Outbound bookkeeping: the claim makes a send happen at most once.
    send_claimed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("send claimed at"))
    next_attempt_at = models.DateTimeField(null=True, blank=True, verbose_name=_("next attempt at"))
    attempts = models.PositiveSmallIntegerField(default=0, verbose_name=_("attempts"))

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
            # The KPIs ask "was a call of this case answered?" for every case of a period: with
            # only the answered calls indexed, PostgreSQL probes them per case instead of scanning
            # all messages (bench/kpis.py: 98 ms of the 90-day report's 120 ms live part), and
            # when it prefers hashing them all it reads the index alone, not every call's row
            # (bench/scale.py, 10M messages: 436 of the API's 481 ms for today's cases).
            models.Index(
                fields=["case"],
                condition=models.Q(kind="call", meta__answered=True),
                name="message_answered_call_case",
            ),
            # A send task's claim takes the oldest due replies: only the queued ones are
            # indexed, not millions of sent ones (conversations/batches.py).
            models.Index(
                fields=["id"],
                condition=models.Q(direction="out", status="queued"),
                name="message_queued_out",
            ),
        ]
        ordering = ["created_at", "id"]
        verbose_name = _("message")
        verbose_name_plural = _("messages")

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
        PENDING = "pending", _("In progress")
        SENT = "sent", _("Sent")
        RETRY = "retry", _("Failed, will retry")
        FAILED = "failed", _("Failed")
        UNKNOWN = "unknown", _("Interrupted, outcome unknown")
        # Claimed in a batch, not handed to the provider yet: a crash before its
        # turn gives the message back to the queue, it is not "may have been sent".
        WAITING = "waiting", _("Waiting for its turn in a batch")

    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, related_name="delivery_attempts", verbose_name=_("message")
    )
    number = models.PositiveSmallIntegerField(verbose_name=_("number"))
    started_at = models.DateTimeField(verbose_name=_("started at"))
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name=_("finished at"))
    outcome = models.CharField(
        max_length=10, choices=Outcome.choices, default=Outcome.PENDING, verbose_name=_("outcome")
    )
    error = models.TextField(blank=True, verbose_name=_("error"))
    duration_ms = models.PositiveIntegerField(null=True, blank=True, verbose_name=_("duration ms"))
    # The Celery node that made the attempt: when that node starts again, its
    # attempts still pending were cut short by the crash, no need to wait.
    worker = models.CharField(max_length=200, blank=True, verbose_name=_("worker"))

    class Meta:
        ordering = ["message_id", "number"]
        constraints = [models.UniqueConstraint(fields=["message", "number"], name="attempt_number_unique")]
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")

    def __str__(self):
        return f"Attempt {self.number} of message #{self.message_id}: {self.outcome}"


class CannedResponse(models.Model):
    """A saved answer agents insert by shortcut; `{{customer.first_name}}` is filled in."""

    shortcut = models.SlugField(
        max_length=40,
        unique=True,
        help_text=_("Typed after '/' in the reply box."),
        verbose_name=_("shortcut"),
    )
    title = models.CharField(max_length=120, verbose_name=_("title"))
    body = models.TextField(verbose_name=_("body"))
    team = models.ForeignKey(
        Team,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        help_text=_("Empty: everyone sees it."),
        verbose_name=_("team"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        ordering = ["shortcut"]
        verbose_name = _("canned response")
        verbose_name_plural = _("canned responses")

    def __str__(self):
        return f"/{self.shortcut}"


class Mention(models.Model):
    """An @mention of a colleague in an internal note: their notification."""

    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, related_name="mentions", verbose_name=_("message")
    )
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="mentions", verbose_name=_("case"))
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mentions", verbose_name=_("user")
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    read_at = models.DateTimeField(null=True, blank=True, verbose_name=_("read at"))

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["message", "user"], name="mention_once_per_note")]
        indexes = [models.Index(fields=["user", "read_at"])]
        verbose_name = _("mention")
        verbose_name_plural = _("mentions")

    def __str__(self):
        return f"@{self.user_id} in message #{self.message_id}"


class CaseRead(models.Model):
    """When an agent last looked at a case: what came after is unread for them."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="reads", verbose_name=_("case"))
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="case_reads", verbose_name=_("user")
    )
    read_at = models.DateTimeField(verbose_name=_("read at"))

    class Meta:
        constraints = [models.UniqueConstraint(fields=["case", "user"], name="case_read_once_per_agent")]
        verbose_name = _("case read")
        verbose_name_plural = _("case reads")

    def __str__(self):
        return f"{self.user_id} read case #{self.case_id} at {self.read_at}"
