"""The KPI engine: DESIGN.md's "KPI definitions" as SQL aggregates.

Everything is computed as counters per (day, channel, agent, team) in the
database: `daily_counters` groups raw cases, calls and survey answers; the
daily rollup stores exactly those groups (KpiDaily), and `kpi_report` adds the
groups up per dimension (again in SQL for rolled-up days) and turns the sums
into KPIs. A rollup and a live computation therefore agree by construction,
and a test checks it.

First response: Case.first_response_at, which the core sets when the first
agent reply is accepted by its provider (sent, delivered or read) or a call is
answered, never at queueing; a reply that then fails for good is withdrawn
(conversations.services.case_response_withdraw). Bot lines, automatic messages
and notes never set it; a reopened case keeps it. "Exactly one agent message"
(FCR) counts the messages themselves, with the same rules: only agent messages
that reached the customer (REACHED_CUSTOMER), so a failed or still queued
reply is not one. docs/kpis.md "What counts, and when" has every decision.

Attribution: a case belongs to the channel it was opened on, its assignee and
its team; a call to the channel it came on and its case's assignee and team;
a survey answer to the channel, agent and team of the case it was sent for.

Layout: counters.py (raw rows grouped per day and dimension), reports.py (those
counters added up into KPIs), scorecard.py (the channel scorecard). Callers
import from here.
"""

from kpis.selectors.counters import (
    COUNTERS,
    FINAL_CALL_STATUSES,
    KPI_NAMES,
    UNANSWERED_CALL_STATUSES,
    KpiFilter,
    daily_counters,
    day_bounds,
)
from kpis.selectors.reports import (
    cost_per_case,
    kpi_report,
    kpis_from_counters,
)
from kpis.selectors.scorecard import (
    BILLED_KINDS,
    GROW,
    KEEP,
    REVIEW,
    SCORECARD_KPIS,
    TOO_FEW,
    VerdictRule,
    channel_scorecard,
    channel_verdict,
)

__all__ = [
    "KPI_NAMES",
    "COUNTERS",
    "UNANSWERED_CALL_STATUSES",
    "FINAL_CALL_STATUSES",
    "KpiFilter",
    "day_bounds",
    "daily_counters",
    "kpis_from_counters",
    "cost_per_case",
    "kpi_report",
    "REVIEW",
    "KEEP",
    "GROW",
    "TOO_FEW",
    "SCORECARD_KPIS",
    "BILLED_KINDS",
    "VerdictRule",
    "channel_verdict",
    "channel_scorecard",
]
