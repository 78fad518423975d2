"""Routing, auto-assignment, rules, macros and out-of-hours replies (docs/automation.md).

The core (conversations) never imports this app: it announces through its
signals and this app listens (automation/receivers.py).
"""

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _


class AssignmentMode(models.TextChoices):
    ROUND_ROBIN = "round_robin", _("Round-robin")
    LEAST_LOADED = "least_loaded", _("Least loaded")


class TeamRouting(models.Model):
    """How a team hands its new cases out. Its row is also the team's assignment lock."""

    team = models.OneToOneField("conversations.Team", on_delete=models.CASCADE, related_name="routing")
    auto_assign = models.BooleanField(_("auto-assign"), default=True)
    mode = models.CharField(
        _("mode"), max_length=12, choices=AssignmentMode.choices, default=AssignmentMode.ROUND_ROBIN
    )
    capacity = models.PositiveSmallIntegerField(
        _("capacity"),
        default=5,
        validators=[MinValueValidator(1)],
        help_text=_("Most open or pending cases an agent of this team holds at once."),
    )
    reassign_after_minutes = models.PositiveIntegerField(
        _("reassign after (minutes)"),
        null=True,
        blank=True,
        help_text=_(
            "When an agent has been offline this long, their cases still waiting for an "
            "answer go back to the team's queue. Empty: they keep them."
        ),
    )
    # Round-robin cursor: the next case goes to the first available agent after this one.
    last_agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = _("team routing")
        verbose_name_plural = _("team routing")

    def __str__(self):
        return str(self.team)


class AgentPresence(models.Model):
    """Whether an agent can take cases now: an open inbox socket, recently seen, not away.

    One row per agent, written by the inbox WebSocket and the away toggle; the
    assigner locks the rows of the agents it chooses among.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="presence")
    connections = models.PositiveIntegerField(default=0)
    away = models.BooleanField(default=False)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    # When the agent stopped being available (socket closed, away): the reassign clock.
    unavailable_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("agent presence")
        verbose_name_plural = _("agent presence")

    def __str__(self):
        return f"{self.user}"


class RuleEvent(models.TextChoices):
    MESSAGE_RECEIVED = "message_received", _("Message received")
    CASE_OPENED = "case_opened", _("Case opened or reopened")
    STATUS_CHANGED = "status_changed", _("Case status changed")
    CASE_ASSIGNED = "case_assigned", _("Case assigned")
    CASE_IDLE = "case_idle", _("Case idle for N minutes")
    SLA_WARNING = "sla_warning", _("SLA warning")
    SLA_BREACHED = "sla_breached", _("SLA breached")
    SURVEY_ANSWERED = "survey_answered", _("Survey answered")


class Rule(models.Model):
    """When <event>, if <conditions>, then <actions>: checked in position order."""

    class Match(models.TextChoices):
        ALL = "all", _("All conditions")
        ANY = "any", _("Any condition")

    name = models.CharField(_("name"), max_length=120, unique=True)
    position = models.PositiveIntegerField(_("position"), default=100, help_text=_("Lower runs first."))
    is_active = models.BooleanField(_("active"), default=True)
    event = models.CharField(_("when"), max_length=20, choices=RuleEvent.choices)
    idle_minutes = models.PositiveIntegerField(
        _("idle minutes"), null=True, blank=True, help_text=_("For 'Case idle': minutes without a message.")
    )
    match = models.CharField(_("match"), max_length=3, choices=Match.choices, default=Match.ALL)
    conditions = models.JSONField(_("conditions"), default=list, blank=True)
    actions = models.JSONField(_("actions"), default=list)
    stop_processing = models.BooleanField(
        _("stop processing further rules"), default=False, help_text=_("When this rule matches.")
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "pk"]
        verbose_name = _("rule")
        verbose_name_plural = _("rules")

    def __str__(self):
        return self.name

    def clean(self):
        from automation.rules.validation import rule_validate

        rule_validate(rule=self)


class RuleRun(models.Model):
    """A rule that fired once for a case and a moment (idle periods): never twice for the same one."""

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="runs")
    case = models.ForeignKey("conversations.Case", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=64)
    ran_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rule", "case", "key"], name="rule_run_once")]

    def __str__(self):
        return f"{self.rule_id} on case #{self.case_id} ({self.key})"


class Macro(models.Model):
    """Actions an agent applies to a case in one click; shared, or one agent's own."""

    name = models.CharField(_("name"), max_length=120)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="macros",
        verbose_name=_("owner"),
        help_text=_("Empty: shared with every agent."),
    )
    actions = models.JSONField(_("actions"), default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "pk"]
        verbose_name = _("macro")
        verbose_name_plural = _("macros")

    def __str__(self):
        return self.name

    def clean(self):
        from automation.rules.validation import macro_validate

        macro_validate(macro=self)


class OutOfHoursReply(models.Model):
    """The channel's automatic answer outside business hours, with the next opening time."""

    channel = models.OneToOneField(
        "channels_adapters.Channel", on_delete=models.CASCADE, related_name="out_of_hours"
    )
    is_active = models.BooleanField(_("active"), default=True)
    business_hours = models.ForeignKey(
        "kpis.BusinessHours",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        verbose_name=_("business hours"),
        help_text=_("Empty: the case team's hours, else the company's."),
    )
    text_en = models.TextField(
        _("text (English)"),
        blank=True,
        help_text=_("{next_open} is replaced by the next opening time. Empty: the default text."),
    )
    text_es = models.TextField(_("text (Spanish)"), blank=True)

    class Meta:
        verbose_name = _("out-of-hours reply")
        verbose_name_plural = _("out-of-hours replies")

    def __str__(self):
        return str(self.channel)


class OutOfHoursSent(models.Model):
    """One out-of-hours reply per case per closed period (the period is named by when it ends)."""

    case = models.ForeignKey("conversations.Case", on_delete=models.CASCADE, related_name="+")
    period = models.CharField(max_length=40)
    message = models.ForeignKey(
        "conversations.Message", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    sent_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["case", "period"], name="out_of_hours_once_per_period")
        ]

    def __str__(self):
        return f"Out-of-hours reply to case #{self.case_id} ({self.period})"
