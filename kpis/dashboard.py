"""What the supervisor dashboard shows, built from one KPI report (plus the previous period's totals)."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from django.contrib.auth import get_user_model
from django.db.models import Q

from channels_adapters.models import Channel
from conversations.models import Team
from helpdesk import roles
from kpis.selectors import KPI_NAMES, kpi_report

# (KPI, label, how to show it, whether a higher value is better)
COLUMNS = (
    ("volume", "Volume", "count", None),
    ("tme_seconds", "Avg wait (TME)", "duration", False),
    ("resolution_seconds", "Resolution time", "duration", False),
    ("tma_seconds", "Handle time (TMA)", "duration", False),
    ("talk_seconds", "Talk time", "duration", None),
    ("fcr", "FCR", "percent", True),
    ("abandonment_rate", "Abandonment", "percent", False),
    ("csat", "CSAT", "percent", True),
    ("nps", "NPS", "nps", True),
    ("ces", "CES", "score", True),
    ("sla_compliance", "SLA compliance", "percent", True),
    ("cost_per_case", "Cost per case", "money", False),
)
LABELS = {name: label for name, label, _, _ in COLUMNS}
FORMATS = {name: fmt for name, _, fmt, _ in COLUMNS}
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
)
CHARTS = ("volume", "tme_seconds", "tma_seconds", "fcr", "csat", "abandonment_rate", "sla_compliance")
TABLES = ("channels", "agents")


def fmt(kpi: str, value) -> str:
    if value is None:
        return "–"
    kind = FORMATS[kpi]
    if kind == "count":
        return f"{value:,}"
    if kind == "duration":
        seconds = round(value)
        hours, rest = divmod(seconds, 3600)
        minutes, secs = divmod(rest, 60)
        if hours:
            return f"{hours}h {minutes:02d}m"
        return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"
    if kind == "percent":
        return f"{value * 100:.1f} %"
    if kind == "nps":
        return f"{value * 100:+.0f}"
    if kind == "score":
        return f"{value:.2f}"
    return f"{value:,.2f}"


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
    better = dict((n, b) for n, _, _, b in COLUMNS)[kpi]
    tone = "neutral" if better is None or delta == 0 else ("good" if (delta > 0) == better else "bad")
    return {"text": text, "tone": tone, "direction": "up" if delta > 0 else "down" if delta < 0 else "flat"}


def svg_chart(series: list[dict], kpi: str, width: int = 560, height: int = 160) -> dict:
    """A line chart as SVG coordinates; a day with no value breaks the line."""
    pad_left, pad_right, pad_top, pad_bottom = 52, 12, 10, 24
    values = [row[kpi] for row in series]
    present = [v for v in values if v is not None]
    top = max(present) if present else 0
    if FORMATS[kpi] == "percent":
        top = max(top, 1e-9) if top > 1 else 1.0
    top = top or 1
    bottom = min(0, min(present)) if present else 0
    span = (top - bottom) or 1
    inner_w, inner_h = width - pad_left - pad_right, height - pad_top - pad_bottom
    step = inner_w / max(len(series) - 1, 1)
    segments, current, points = [], [], []
    for i, value in enumerate(values):
        if value is None:
            if current:
                segments.append(current)
            current = []
            continue
        x = pad_left + i * step
        y = pad_top + inner_h - (value - bottom) / span * inner_h
        current.append(f"{x:.1f},{y:.1f}")
        points.append({"x": f"{x:.1f}", "y": f"{y:.1f}", "label": f"{series[i]['date']}: {fmt(kpi, value)}"})
    if current:
        segments.append(current)
    label_every = max(1, len(series) // 6)
    return {
        "kpi": kpi,
        "label": LABELS[kpi],
        "width": width,
        "height": height,
        "segments": [" ".join(s) for s in segments],
        "points": points if len(points) <= 62 else [],
        "y_top": fmt(kpi, top),
        "y_bottom": fmt(kpi, bottom),
        "x0": pad_left,
        "x1": width - pad_right,
        "y0": pad_top,
        "y1": pad_top + inner_h,
        "x_labels": [
            {"x": f"{pad_left + i * step:.1f}", "text": row["date"][5:]}
            for i, row in enumerate(series)
            if i % label_every == 0
        ],
        "empty": not present,
        "summary": f"{LABELS[kpi]} per day, {series[0]['date']} to {series[-1]['date']}" if series else "",
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
    previous = kpi_report(start=start - length, end=start, flt=flt, breakdowns=False)
    channels, agents, teams = _names()

    def sort_links(table: str, current: str) -> list[dict]:
        headers = []
        for name, label in (("name", "Channel" if table == "channel" else "Agent"), *LABELS.items()):
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
    }
