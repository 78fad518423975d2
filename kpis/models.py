"""KPI state the core does not keep: SLA policies and due times, business hours,
survey requests and answers, and the daily rollups the dashboard reads."""

from django.conf import settings
from django.db import models


class BusinessHours(models.Model):
    """When a team works: SLA clocks only run inside these hours.

    `weekly` maps day names (mon..sun) to lists of ["HH:MM", "HH:MM"] intervals in
    `time_zone`; a day that is missing or empty is closed. `holidays` is a list of
    "YYYY-MM-DD" dates (in `time_zone`) that are closed all day. The row without a
    team is the company's default.
    """

    name = models.CharField(max_length=100)
    team = models.OneToOneField(
        "conversations.Team", null=True, blank=True, on_delete=models.CASCADE, related_name="business_hours"
    )
    time_zone = models.CharField(max_length=64, default="UTC")
    weekly = models.JSONField(default=dict, blank=True)
    holidays = models.JSONField(default=list, blank=True)

    class Meta:
        verbose_name_plural = "business hours"

    def __str__(self):
        return self.name


class SlaPolicy(models.Model):
    """Targets for a case; the most specific active policy applies (channel and priority first)."""

    name = models.CharField(max_length=100)
    channel = models.ForeignKey(
        "channels_adapters.Channel", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    priority = models.SmallIntegerField(null=True, blank=True, help_text="Empty: any priority.")
    first_response_minutes = models.PositiveIntegerField(null=True, blank=True)
    resolution_minutes = models.PositiveIntegerField(null=True, blank=True)
    business_hours_only = models.BooleanField(
        default=True, help_text="Count only the case team's business hours (else round the clock)."
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        verbose_name = "SLA policy"
        verbose_name_plural = "SLA policies"

    def __str__(self):
        return self.name


class CaseSla(models.Model):
    """The due times a case got from its policy, and what happened to them."""

    case = models.OneToOneField("conversations.Case", on_delete=models.CASCADE, related_name="sla")
    policy = models.ForeignKey(SlaPolicy, null=True, on_delete=models.SET_NULL)
    first_response_due = models.DateTimeField(null=True, blank=True, db_index=True)
    resolution_due = models.DateTimeField(null=True, blank=True, db_index=True)
    first_response_warned_at = models.DateTimeField(null=True, blank=True)
    first_response_breached_at = models.DateTimeField(null=True, blank=True)
    resolution_warned_at = models.DateTimeField(null=True, blank=True)
    resolution_breached_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "case SLA"

    def __str__(self):
        return f"SLA of case #{self.case_id}"


class SurveyKind(models.TextChoices):
    CSAT = "csat", "CSAT (1-5)"
    NPS = "nps", "NPS (0-10)"
    CES = "ces", "CES (1-7)"


# The scale of each survey: (lowest, highest) valid score.
SURVEY_SCALE = {SurveyKind.CSAT: (1, 5), SurveyKind.NPS: (0, 10), SurveyKind.CES: (1, 7)}


class SurveyCampaign(models.Model):
    """A periodic survey to a sample of recently served customers (NPS, CES)."""

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=4, choices=SurveyKind.choices, default=SurveyKind.NPS)
    channel = models.ForeignKey(
        "channels_adapters.Channel",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        help_text="Only customers served on this channel; empty: any channel.",
    )
    sample_size = models.PositiveIntegerField(default=100)
    lookback_days = models.PositiveIntegerField(
        default=30, help_text="Customers with a case resolved lately."
    )
    every_days = models.PositiveIntegerField(default=30)
    last_run_at = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)

    def __str__(self):
        return self.name


class SurveyRequest(models.Model):
    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent, waiting for the answer"
        ANSWERED = "answered", "Answered"
        FAILED = "failed", "Could not be sent"

    kind = models.CharField(max_length=4, choices=SurveyKind.choices)
    case = models.ForeignKey("conversations.Case", on_delete=models.CASCADE, related_name="survey_requests")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    channel = models.ForeignKey(
        "channels_adapters.Channel", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    team = models.ForeignKey("conversations.Team", null=True, blank=True, on_delete=models.SET_NULL)
    campaign = models.ForeignKey(SurveyCampaign, null=True, blank=True, on_delete=models.SET_NULL)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SCHEDULED)
    created_at = models.DateTimeField()
    send_after = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    message = models.ForeignKey(
        "conversations.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # What the case looked like when the survey went out: an answer that reopens
    # the case is undone back to this state.
    case_resolved_at = models.DateTimeField(null=True, blank=True)
    case_reopen_count = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["status", "send_after"]),
            models.Index(fields=["customer", "kind", "created_at"]),
        ]

    def __str__(self):
        return f"{self.kind} survey for case #{self.case_id} ({self.status})"


class SurveyAnswer(models.Model):
    class Via(models.TextChoices):
        MESSAGE = "message", "Reply on the channel"
        LINK = "link", "Survey page"

    request = models.OneToOneField(SurveyRequest, on_delete=models.CASCADE, related_name="answer")
    kind = models.CharField(max_length=4, choices=SurveyKind.choices)
    score = models.SmallIntegerField()
    case = models.ForeignKey("conversations.Case", on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    channel = models.ForeignKey(
        "channels_adapters.Channel", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    team = models.ForeignKey("conversations.Team", null=True, blank=True, on_delete=models.SET_NULL)
    message = models.ForeignKey(
        "conversations.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    via = models.CharField(max_length=8, choices=Via.choices)
    answered_at = models.DateTimeField(db_index=True)

    def __str__(self):
        return f"{self.kind} {self.score} for case #{self.case_id}"


class KpiDaily(models.Model):
    """Counters of one day for one (channel, agent, team): KPIs are ratios of their sums.

    Each counter follows DESIGN.md's definition and is anchored on its own event:
    opened cases on opened_at, resolutions on resolved_at, calls on the call
    message, survey answers on answered_at. Durations are sums in seconds.
    """

    day = models.DateField()
    channel = models.ForeignKey(
        "channels_adapters.Channel", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    team = models.ForeignKey("conversations.Team", null=True, blank=True, on_delete=models.CASCADE)

    cases_opened = models.IntegerField(default=0)
    responded = models.IntegerField(default=0)
    first_response_sum = models.FloatField(default=0)
    abandon_base = models.IntegerField(default=0)
    abandoned_cases = models.IntegerField(default=0)
    sla_count = models.IntegerField(default=0)
    sla_met = models.IntegerField(default=0)
    resolved = models.IntegerField(default=0)
    resolution_sum = models.FloatField(default=0)
    handled = models.IntegerField(default=0)
    handle_sum = models.FloatField(default=0)
    fcr_base = models.IntegerField(default=0)
    fcr_met = models.IntegerField(default=0)
    inbound_calls = models.IntegerField(default=0)
    abandoned_calls = models.IntegerField(default=0)
    talk_count = models.IntegerField(default=0)
    talk_sum = models.FloatField(default=0)
    csat_count = models.IntegerField(default=0)
    csat_positive = models.IntegerField(default=0)
    nps_count = models.IntegerField(default=0)
    nps_promoters = models.IntegerField(default=0)
    nps_detractors = models.IntegerField(default=0)
    ces_count = models.IntegerField(default=0)
    ces_sum = models.FloatField(default=0)

    class Meta:
        verbose_name = "daily KPI rollup"
        constraints = [
            models.UniqueConstraint(
                fields=["day", "channel", "agent", "team"], name="kpi_daily_one_row", nulls_distinct=False
            )
        ]
        indexes = [models.Index(fields=["day", "channel"])]

    def __str__(self):
        return f"KPIs of {self.day}"


class KpiRollupDay(models.Model):
    """A day whose rollup rows are written: days without one are computed live."""

    day = models.DateField(primary_key=True)
    computed_at = models.DateTimeField()

    def __str__(self):
        return f"Rollup of {self.day}"
