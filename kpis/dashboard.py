"""What the supervisor dashboard shows, built from one KPI report (plus the previous period's totals)."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import formats
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from channels_adapters.models import Channel
from conversations.models import Team
from helpdesk import roles
from kpis.selectors import KPI_NAMES, kpi_report

# (KPI, label, how to show it, whether a higher value is better)
COLUMNS = (
    ("volume", gettext_lazy("Volume"), "count", None),
    ("tme_seconds", gettext_lazy("Avg wait (TME)"), "duration", False),
    ("resolution_seconds", gettext_lazy("Resolution time"), "duration", False),
    ("tma_seconds", gettext_lazy("Handle time (TMA)"), "duration", False),
    ("talk_seconds", gettext_lazy("Talk time"), "duration", None),
    ("fcr", gettext_lazy("FCR"), "percent", True),
    ("abandonment_rate", gettext_lazy("Abandonment"), "percent", False),
    ("csat", gettext_lazy("CSAT"), "percent", True),
    ("nps", gettext_lazy("NPS"), "nps", True),
    ("ces", gettext_lazy("CES"), "score", True),
    ("sla_compliance", gettext_lazy("SLA compliance"), "percent", True),
    ("cost_per_case", gettext_lazy("Cost per case"), "money", False),
)
LABELS = {name: label for name, label, _kind, _better in COLUMNS}
FORMATS = {name: kind for name, _label, kind, _better in COLUMNS}
TILES = (
    "tme_seconds",
    "tma_seconds",
    "fcr",
    "csat",
    "nps",
    "ces",
    "abandonment_rate",
    "sla_compliance",
    "volume",
    "cost_per_case",
)
CHARTS = (
    "volume",
    "tme_seconds",
    "tma_seconds",
    "fcr",
    "csat",
    "nps",
    "ces",
    "abandonment_rate",
    "sla_compliance",
)
TABLES = ("channels", "agents")


def number(value, places: int | None = None) -> str:
    """A number as the reader's language writes it (1,234.5 in English, 1.234,5 in Spanish)."""
    if places is not None:
        value = round(value, places)  # number_format cuts the other digits off; a reader expects rounding
    return formats.number_format(value, places, use_l10n=True, force_grouping=True)


def fmt(kpi: str, value) -> str:
    if value is None:
        return "–"
    kind = FORMATS[kpi]
    if kind == "count":
        return number(value)
    if kind == "duration":
        seconds = round(value)
        hours, rest = divmod(seconds, 3600)
        minutes, secs = divmod(rest, 60)
        if hours:
            return f"{hours}h {minutes:02d}m"
        return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"
    if kind == "percent":
        return f"{number(value * 100, 1)} %"
    if kind == "nps":
        return f"{value * 100:+.0f}"
    if kind == "score":
        return number(value, 2)
    # Money: always with its currency, so nobody reads a cost without knowing in what.
    return f"{number(value, 2)} {settings.KPIS['CURRENCY']}"


def _change(kpi: str, now, before) -> dict | None:
    if now is None or before is None:
        return None
    delta = now - before
    kind = FORMATS[kpi]
    if kind == "percent":
        text = f"{delta * 100:+.1f} pts"
    elif kind == "nps":
        text = f"{delta * 100:+.0f}"
    elif kind == "duration":
        text = ("+" if delta >= 0 else "−") + fmt(kpi, abs(delta))
    elif kind == "count":
        text = f"{delta:+,}"
    else:
        text = f"{delta:+.2f}"
    better = {n: b for n, _label, _kind, b in COLUMNS}[kpi]
    tone = "neutral" if better is None or delta == 0 else ("good" if (delta > 0) == better else "bad")
    return {"text": text, "tone": tone, "direction": "up" if delta > 0 else "down" if delta < 0 else "flat"}


# Fixed vertical ranges where the scale has natural ends, so two periods' charts compare at a glance.
SCALES = {"percent": (0.0, 1.0), "nps": (-1.0, 1.0), "score": (1.0, 7.0)}


def svg_chart(series: list[dict], kpi: str, width: int = 560, height: int = 180) -> dict:
    """A line chart as SVG coordinates, with y ticks and dated x labels.

    Days without a value (no survey answer, nothing resolved) are skipped and the line
    joins the days around them: sparse KPIs such as NPS read as a trend, not lone dots.
    """
    pad_left, pad_right, pad_top, pad_bottom = 60, 14, 12, 30
    values = [row[kpi] for row in series]
    present = [v for v in values if v is not None]
    if FORMATS[kpi] in SCALES:
        bottom, top = SCALES[FORMATS[kpi]]
        if present:
            bottom, top = min(bottom, min(present)), max(top, max(present))
    else:
        bottom = min(0, min(present)) if present else 0
        top = (max(present) if present else 0) or 1
    span = (top - bottom) or 1
    inner_w, inner_h = width - pad_left - pad_right, height - pad_top - pad_bottom
    step = inner_w / max(len(series) - 1, 1)
    line, points = [], []
    for i, value in enumerate(values):
        if value is None:
            continue
        x = pad_left + (i * step if len(series) > 1 else inner_w / 2)
        y = pad_top + inner_h - (value - bottom) / span * inner_h
        line.append(f"{x:.1f},{y:.1f}")
        points.append({"x": f"{x:.1f}", "y": f"{y:.1f}", "label": f"{series[i]['date']}: {fmt(kpi, value)}"})
    label_every = max(1, -(-len(series) // 7))
    y_ticks = [
        {"y": f"{pad_top + inner_h - f * inner_h:.1f}", "text": fmt(kpi, bottom + f * span)}
        for f in (0, 0.5, 1)
    ]
    return {
        "kpi": kpi,
        "label": str(LABELS[kpi]),
        "width": width,
        "height": height,
        "segments": [" ".join(line)] if len(line) > 1 else [],
        # Dots only when they can be told apart; a lone value is always shown.
        "points": points if len(points) <= 62 or len(line) == 1 else [],
        "y_top": fmt(kpi, top),
        "y_bottom": fmt(kpi, bottom),
        "y_ticks": y_ticks,
        "x0": pad_left,
        "x1": width - pad_right,
        "y0": pad_top,
        "y1": pad_top + inner_h,
        "x_labels": [
            {"x": f"{pad_left + i * step:.1f}", "text": row["date"][5:]}
            for i, row in enumerate(series)
            if i % label_every == 0
        ],
        "x_title": _("Day (month-day)"),
        "empty": not present,
        "summary": (
            _("%(kpi)s per day, %(start)s to %(end)s")
            % {"kpi": LABELS[kpi], "start": series[0]["date"], "end": series[-1]["date"]}
            if series
            else ""
        ),
    }


def _names():
    User = get_user_model()
    channels = {c.key: c.name for c in Channel.objects.only("key", "name")}
    agents = {
        str(u.pk): (u.get_full_name() or u.get_username())
        for u in User.objects.filter(
            Q(is_superuser=True) | Q(groups__name__in=roles.ROLE_GROUPS), is_active=True
        ).distinct()
    }
    teams = {str(t.pk): t.name for t in Team.objects.all()}
    return channels, agents, teams


def _rows(report: dict, key: str, names: dict, sort: str) -> list[dict]:
    rows = [
        {"id": ident, "name": names.get(ident, f"#{ident}"), "values": values}
        for ident, values in report[key].items()
    ]
    field, descending = sort.lstrip("-"), sort.startswith("-")
    if field == "name":
        rows.sort(key=lambda r: r["name"].lower(), reverse=descending)
    elif field in KPI_NAMES:
        # Rows without a value go last whichever way the column is sorted.
        with_value = [r for r in rows if r["values"][field] is not None]
        without = [r for r in rows if r["values"][field] is None]
        with_value.sort(key=lambda r: r["values"][field], reverse=descending)
        rows = with_value + without
    return rows


def _query(form) -> dict:
    if form.is_bound and form.is_valid():
        return form.cleaned_data
    return form.defaults()


def table_csv(*, form, table: str) -> tuple[list[str], list[list]]:
    q = _query(form)
    report = kpi_report(start=q["start"], end=q["end"], flt=q["flt"])
    channels, agents, _ = _names()
    key, names = ("by_channel", channels) if table == "channels" else ("by_agent", agents)
    header = ["channel" if table == "channels" else "agent", "id", *KPI_NAMES]
    rows = [
        [r["name"], r["id"], *(r["values"][k] for k in KPI_NAMES)] for r in _rows(report, key, names, "name")
    ]
    return header, rows


def dashboard_context(*, form, params) -> dict:
    q = _query(form)
    start, end, flt = q["start"], q["end"], q["flt"]
    report = kpi_report(start=start, end=end, flt=flt)
    length = end - start
    # Only its totals show (the tiles' change): no per-day sums to read for it.
    previous = kpi_report(start=start - length, end=start, flt=flt, breakdowns=False, series=False)
    channels, agents, teams = _names()

    def sort_links(table: str, current: str) -> list[dict]:
        headers = []
        for name, label in (("name", _("Channel") if table == "channel" else _("Agent")), *LABELS.items()):
            active = current.lstrip("-") == name
            descending = current.startswith("-")
            # First click sorts a KPI from highest, the name from A.
            next_sort = (
                (name if descending else f"-{name}") if active else (name if name == "name" else f"-{name}")
            )
            query = {k: v for k, v in params.items() if k != f"sort_{table}"}
            query[f"sort_{table}"] = next_sort
            headers.append(
                {
                    "name": name,
                    "label": label,
                    "url": "?" + urlencode(query),
                    "aria_sort": ("descending" if descending else "ascending") if active else "none",
                }
            )
        return headers

    def table(key: str, names: dict, which: str) -> dict:
        sort = params.get(f"sort_{which}", "-volume")
        rows = _rows(report, key, names, sort)
        return {
            "headers": sort_links(which, sort),
            "rows": [
                {"name": r["name"], "cells": [fmt(k, r["values"][k]) for k in LABELS], "raw": r["values"]}
                for r in rows
            ],
        }

    tiles = [
        {
            "kpi": kpi,
            "label": LABELS[kpi],
            "value": fmt(kpi, report["totals"][kpi]),
            "change": _change(kpi, report["totals"][kpi], previous["totals"][kpi]),
        }
        for kpi in TILES
    ]
    export_query = urlencode(
        {k: v for k, v in params.items() if k in ("from", "to", "channel", "agent", "team")}
    )
    return {
        "form": form,
        "start": start,
        "last_day": end - timedelta(days=1),
        "end": end,
        "previous_start": start - length,
        "report": report,
        "tiles": tiles,
        "charts": [svg_chart(report["series"], kpi) for kpi in CHARTS],
        "channel_table": table("by_channel", channels, "channel"),
        "agent_table": table("by_agent", agents, "agent"),
        "channel_choices": sorted(channels.items(), key=lambda i: i[1].lower()),
        "agent_choices": sorted(agents.items(), key=lambda i: i[1].lower()),
        "team_choices": sorted(teams.items(), key=lambda i: i[1].lower()),
        "selected": {
            "channel": params.get("channel", ""),
            "agent": params.get("agent", ""),
            "team": params.get("team", ""),
        },
        "export_query": export_query,
        "period_query": urlencode({k: v for k, v in params.items() if k in ("from", "to")}),
        "currency": settings.KPIS["CURRENCY"],
    }
