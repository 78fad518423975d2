"""KPI state the core does not keep: SLA policies and due times, business hours,
survey requests and answers, and the daily rollups the dashboard reads."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class BusinessHours(models.Model):
    """When a team works: SLA clocks only run inside these hours.

    `weekly` maps day names (mon..sun) to lists of ["HH:MM", "HH:MM"] intervals in
    `time_zone`; a day that is missing or empty is closed. `holidays` is a list of
    "YYYY-MM-DD" dates (in `time_zone`) that are closed all day. The row without a
    team is the company's default.
    """

    name = models.CharField(max_length=100, verbose_name=_("name"))
    team = models.OneToOneField(
        "conversations.Team",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="business_hours",
        verbose_name=_("team"),
    )
    time_zone = models.CharField(max_length=64, default="UTC", verbose_name=_("time zone"))
    weekly = models.JSONField(default=dict, blank=True, verbose_name=_("weekly"))
    holidays = models.JSONField(default=list, blank=True, verbose_name=_("holidays"))

    class Meta:
        verbose_name_plural = _("business hours")
        verbose_name = _("business hours")

    def __str__(self):
        return self.name


class SlaPolicy(models.Model):
    """Targets for a case; the most specific active policy applies (channel and priority first)."""

    name = models.CharField(max_length=100, verbose_name=_("name"))
    channel = models.ForeignKey(
        "channels_adapters.Channel",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("channel"),
    )
    priority = models.SmallIntegerField(
        null=True, blank=True, help_text=_("Empty: any priority."), verbose_name=_("priority")
    )
    first_response_minutes = models.PositiveIntegerField(
        null=True, blank=True, verbose_name=_("first response minutes")
    )
    resolution_minutes = models.PositiveIntegerField(
        null=True, blank=True, verbose_name=_("resolution minutes")
    )
    business_hours_only = models.BooleanField(
        default=True,
        help_text=_("Count only the case team's business hours (else round the clock)."),
        verbose_name=_("business hours only"),
    )
    is_active = models.BooleanField(default=True, verbose_name=_("is active"))

    class Meta:
        verbose_name = _("SLA policy")
        verbose_name_plural = _("SLA policies")

    def __str__(self):
        return self.name


class CaseSla(models.Model):
    """The due times a case got from its policy, and what happened to them."""

    case = models.OneToOneField(
        "conversations.Case", on_delete=models.CASCADE, related_name="sla", verbose_name=_("case")
    )
    policy = models.ForeignKey(SlaPolicy, null=True, on_delete=models.SET_NULL, verbose_name=_("policy"))
    first_response_due = models.DateTimeField(
        null=True, blank=True, db_index=True, verbose_name=_("first response due")
    )
    resolution_due = models.DateTimeField(
        null=True, blank=True, db_index=True, verbose_name=_("resolution due")
    )
    first_response_warned_at = models.DateTimeField(
        null=True, blank=True, verbose_name=_("first response warned at")
    )
    first_response_breached_at = models.DateTimeField(
        null=True, blank=True, verbose_name=_("first response breached at")
    )
    resolution_warned_at = models.DateTimeField(null=True, blank=True, verbose_name=_("resolution warned at"))
    resolution_breached_at = models.DateTimeField(
        null=True, blank=True, verbose_name=_("resolution breached at")
    )

    class Meta:
        verbose_name = _("case SLA")
        verbose_name_plural = _("case SLAs")

    def __str__(self):
        return f"SLA of case #{self.case_id}"


class SurveyKind(models.TextChoices):
    CSAT = "csat", _("CSAT (1-5)")
    NPS = "nps", _("NPS (0-10)")
    CES = "ces", _("CES (1-7)")


# The scale of each survey: (lowest, highest) valid score.
SURVEY_SCALE = {SurveyKind.CSAT: (1, 5), SurveyKind.NPS: (0, 10), SurveyKind.CES: (1, 7)}


class SurveyCampaign(models.Model):
    """A periodic survey to a sample of recently served customers (NPS, CES)."""

    name = models.CharField(max_length=100, verbose_name=_("name"))
    kind = models.CharField(
        max_length=4, choices=SurveyKind.choices, default=SurveyKind.NPS, verbose_name=_("kind")
    )
    channel = models.ForeignKey(
        "channels_adapters.Channel",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        help_text=_("Only customers served on this channel; empty: any channel."),
        verbose_name=_("channel"),
    )
    sample_size = models.PositiveIntegerField(default=100, verbose_name=_("sample size"))
    lookback_days = models.PositiveIntegerField(
        default=30, help_text=_("Customers with a case resolved lately."), verbose_name=_("lookback days")
    )
    every_days = models.PositiveIntegerField(default=30, verbose_name=_("every days"))
    last_run_at = models.DateTimeField(null=True, blank=True, verbose_name=_("last run at"))
    is_active = models.BooleanField(default=True, verbose_name=_("is active"))

    class Meta:
        verbose_name = _("survey campaign")
        verbose_name_plural = _("survey campaigns")

    def __str__(self):
        return self.name


class SurveyRequest(models.Model):
    class Status(models.TextChoices):
        SCHEDULED = "scheduled", _("Scheduled")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent, waiting for the answer")
        ANSWERED = "answered", _("Answered")
        FAILED = "failed", _("Could not be sent")

    kind = models.CharField(max_length=4, choices=SurveyKind.choices, verbose_name=_("kind"))
    case = models.ForeignKey(
        "conversations.Case", on_delete=models.CASCADE, related_name="survey_requests", verbose_name=_("case")
    )
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.CASCADE, related_name="+", verbose_name=_("customer")
    )
    channel = models.ForeignKey(
        "channels_adapters.Channel",
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("channel"),
    )
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("agent"),
    )
    team = models.ForeignKey(
        "conversations.Team", null=True, blank=True, on_delete=models.SET_NULL, verbose_name=_("team")
    )
    campaign = models.ForeignKey(
        SurveyCampaign, null=True, blank=True, on_delete=models.SET_NULL, verbose_name=_("campaign")
    )
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.SCHEDULED, verbose_name=_("status")
    )
    created_at = models.DateTimeField(verbose_name=_("created at"))
    send_after = models.DateTimeField(verbose_name=_("send after"))
    sent_at = models.DateTimeField(null=True, blank=True, verbose_name=_("sent at"))
    message = models.ForeignKey(
        "conversations.Message",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("message"),
    )
    # What the case looked like when the survey went out: an answer that reopens
    # the case is undone back to this state.
    case_resolved_at = models.DateTimeField(null=True, blank=True, verbose_name=_("case resolved at"))
    case_reopen_count = models.PositiveIntegerField(default=0, verbose_name=_("case reopen count"))
    error = models.TextField(blank=True, verbose_name=_("error"))

    class Meta:
        indexes = [
            models.Index(fields=["status", "send_after"]),
            models.Index(fields=["customer", "kind", "created_at"]),
        ]
        verbose_name = _("survey request")
        verbose_name_plural = _("survey requests")

    def __str__(self):
        return f"{self.kind} survey for case #{self.case_id} ({self.status})"


class SurveyAnswer(models.Model):
    class Via(models.TextChoices):
        MESSAGE = "message", _("Reply on the channel")
        LINK = "link", _("Survey page")

    request = models.OneToOneField(
        SurveyRequest, on_delete=models.CASCADE, related_name="answer", verbose_name=_("request")
    )
    kind = models.CharField(max_length=4, choices=SurveyKind.choices, verbose_name=_("kind"))
    score = models.SmallIntegerField(verbose_name=_("score"))
    case = models.ForeignKey(
        "conversations.Case", on_delete=models.CASCADE, related_name="+", verbose_name=_("case")
    )
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.CASCADE, related_name="+", verbose_name=_("customer")
    )
    channel = models.ForeignKey(
        "channels_adapters.Channel",
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("channel"),
    )
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("agent"),
    )
    team = models.ForeignKey(
        "conversations.Team", null=True, blank=True, on_delete=models.SET_NULL, verbose_name=_("team")
    )
    message = models.ForeignKey(
        "conversations.Message",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("message"),
    )
    via = models.CharField(max_length=8, choices=Via.choices, verbose_name=_("via"))
    answered_at = models.DateTimeField(db_index=True, verbose_name=_("answered at"))

    class Meta:
        verbose_name = _("survey answer")
        verbose_name_plural = _("survey answers")

    def __str__(self):
        return f"{self.kind} {self.score} for case #{self.case_id}"


class KpiCounters(models.Model):
    """The counters KPIs are ratios of (DESIGN.md's definitions): a day's rollup rows and
    their per-day totals hold the same ones."""

    cases_opened = models.IntegerField(default=0, verbose_name=_("cases opened"))
    responded = models.IntegerField(default=0, verbose_name=_("responded"))
    first_response_sum = models.FloatField(default=0, verbose_name=_("first response sum"))
    abandon_base = models.IntegerField(default=0, verbose_name=_("abandon base"))
    abandoned_cases = models.IntegerField(default=0, verbose_name=_("abandoned cases"))
    sla_count = models.IntegerField(default=0, verbose_name=_("sla count"))
    sla_met = models.IntegerField(default=0, verbose_name=_("sla met"))
    resolved = models.IntegerField(default=0, verbose_name=_("resolved"))
    resolution_sum = models.FloatField(default=0, verbose_name=_("resolution sum"))
    handled = models.IntegerField(default=0, verbose_name=_("handled"))
    handle_sum = models.FloatField(default=0, verbose_name=_("handle sum"))
    fcr_base = models.IntegerField(default=0, verbose_name=_("fcr base"))
    fcr_met = models.IntegerField(default=0, verbose_name=_("fcr met"))
    inbound_calls = models.IntegerField(default=0, verbose_name=_("inbound calls"))
    abandoned_calls = models.IntegerField(default=0, verbose_name=_("abandoned calls"))
    talk_count = models.IntegerField(default=0, verbose_name=_("talk count"))
    talk_sum = models.FloatField(default=0, verbose_name=_("talk sum"))
    csat_count = models.IntegerField(default=0, verbose_name=_("csat count"))
    csat_positive = models.IntegerField(default=0, verbose_name=_("csat positive"))
    nps_count = models.IntegerField(default=0, verbose_name=_("nps count"))
    nps_promoters = models.IntegerField(default=0, verbose_name=_("nps promoters"))
    nps_detractors = models.IntegerField(default=0, verbose_name=_("nps detractors"))
    ces_count = models.IntegerField(default=0, verbose_name=_("ces count"))
    ces_sum = models.FloatField(default=0, verbose_name=_("ces sum"))

    class Meta:
        abstract = True


class KpiDaily(KpiCounters):
    """Counters of one day for one (channel, agent, team): KPIs are ratios of their sums.

    Each counter follows DESIGN.md's definition and is anchored on its own event:
    opened cases on opened_at, resolutions on resolved_at, calls on the call
    message, survey answers on answered_at. Durations are sums in seconds.
    """

    day = models.DateField(verbose_name=_("day"))
    channel = models.ForeignKey(
        "channels_adapters.Channel",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("channel"),
    )
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("agent"),
    )
    team = models.ForeignKey(
        "conversations.Team", null=True, blank=True, on_delete=models.CASCADE, verbose_name=_("team")
    )

    class Meta:
        verbose_name = _("daily KPI rollup")
        constraints = [
            models.UniqueConstraint(
                fields=["day", "channel", "agent", "team"], name="kpi_daily_one_row", nulls_distinct=False
            )
        ]
        indexes = [models.Index(fields=["day", "channel"])]
        verbose_name_plural = _("daily KPI rollups")

    def __str__(self):
        return f"KPIs of {self.day}"


class KpiRollupDay(models.Model):
    """A day whose rollup rows are written: days without one are computed live."""

    day = models.DateField(primary_key=True, verbose_name=_("day"))
    computed_at = models.DateTimeField(verbose_name=_("computed at"))

    class Meta:
        verbose_name = _("KPI rollup day")
        verbose_name_plural = _("KPI rollup days")

    def __str__(self):
        return f"Rollup of {self.day}"


class KpiDayTotal(KpiCounters):
    """A rolled-up day's counters summed over every channel, agent and team: the per-day
    series and the totals of a report without filters read 90 of these rows for a
    quarter instead of the ≈53,000 rows of KpiDaily (80 agents, 8 channels, 8 teams).

    Written with the day's KpiDaily rows (kpis.services.kpi_rollup_days), in the same
    transaction; a report uses them only for days marked rolled up (KpiRollupDay) and
    only when every such day has one, else it sums KpiDaily as before."""

    day = models.DateField(primary_key=True, verbose_name=_("day"))

    class Meta:
        verbose_name = _("KPI day total")
        verbose_name_plural = _("KPI day totals")

    def __str__(self):
        return f"KPI totals of {self.day}"
