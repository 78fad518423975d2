"""What the channel scorecard page and its CSV show, built from one `channel_scorecard` read."""

from __future__ import annotations

from datetime import timedelta

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from kpis.dashboard import _query, fmt, number
from kpis.selectors import GROW, KEEP, REVIEW, TOO_FEW, channel_scorecard

VERDICTS = {
    REVIEW: gettext_lazy("review it"),
    KEEP: gettext_lazy("keep"),
    GROW: gettext_lazy("grow"),
    TOO_FEW: gettext_lazy("too few cases to judge"),
}
# Colour-blind-safe (Okabe-Ito), in rank order; a thirteenth channel reuses the first colour.
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#000000",
    "#999999",
    "#882255",
    "#44AA99",
    "#117733",
)
CSV_COLUMNS = (
    "rank",
    "key",
    "name",
    "kind",
    "volume",
    "previous_volume",
    "volume_change",
    "share",
    "tme_seconds",
    "tma_seconds",
    "fcr",
    "csat",
    "abandonment_rate",
    "sla_compliance",
    "monthly_cost_in_period",
    "billed_messages",
    "cost_per_message",
    "message_cost",
    "cost",
    "cost_per_case",
    "verdict",
    "reasons",
)


def _pct(value) -> str:
    return "–" if value is None else f"{number(value * 100, 0)} %"


def _money(value, currency: str) -> str:
    return "–" if value is None else f"{number(value, 2)} {currency}"


def rule_lines(rule: dict, currency: str) -> list[str]:
    """The verdict rule in words, from the thresholds actually in force."""
    return [
        _(
            "Review it: CSAT below %(csat)s, or more than %(cost)s per case, or a channel that costs money "
            "and brings less than %(share)s of all contacts (or no contact at all)."
        )
        % {
            "csat": _pct(rule["review_csat_below"]),
            "cost": _money(rule["review_cost_above"], currency),
            "share": _pct(rule["review_share_below"]),
        },
        _("Grow: CSAT of at least %(csat)s and at most %(cost)s per case.")
        % {"csat": _pct(rule["grow_csat_from"]), "cost": _money(rule["grow_cost_up_to"], currency)},
        _("Keep: everything else. Under %(n)s cases in the period there is no verdict.")
        % {"n": rule["min_cases"]},
        _("A channel without CSAT answers is judged on its cost and share only."),
    ]


def _reasons(row: dict, rule: dict, currency: str) -> list[str]:
    texts = {
        "no_cases": _("costs %(cost)s and brought no case") % {"cost": _money(row["cost"], currency)},
        "csat_below": _("CSAT below %(csat)s") % {"csat": _pct(rule["review_csat_below"])},
        "cost_above": _("more than %(cost)s per case")
        % {"cost": _money(rule["review_cost_above"], currency)},
        "share_below": _("paid, and under %(share)s of contacts")
        % {"share": _pct(rule["review_share_below"])},
        "csat_from": _("CSAT of at least %(csat)s") % {"csat": _pct(rule["grow_csat_from"])},
        "cost_up_to": _("at most %(cost)s per case") % {"cost": _money(rule["grow_cost_up_to"], currency)},
    }
    return [texts[r] for r in row["reasons"]]


def sentence(row: dict, currency: str) -> str:
    """E.g. "Telegram: 2 % of contacts, CSAT 61 %, 14.00 EUR per case — review it"."""
    return _("%(name)s: %(share)s of contacts, CSAT %(csat)s, %(cost)s per case — %(verdict)s") % {
        "name": row["name"],
        "share": _pct(row["share"]),
        "csat": _pct(row["csat"]),
        "cost": _money(row["cost_per_case"], currency),
        "verdict": VERDICTS[row["verdict"]],
    }


def _nice_top(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^n at or above value: round axis ends."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1) if value >= 1 else 0.1
    while magnitude > value:
        magnitude /= 10
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def scatter(rows: list[dict], rule: dict, currency: str, width: int = 560, height: int = 340) -> dict:
    """Cost per case (x) against CSAT (y), one labelled point per channel, the verdict lines dashed."""
    pad_left, pad_right, pad_top, pad_bottom = 60, 24, 14, 46
    inner_w, inner_h = width - pad_left - pad_right, height - pad_top - pad_bottom
    placed = [r for r in rows if r["cost_per_case"] is not None and r["csat"] is not None]
    x_top = _nice_top(max([r["cost_per_case"] for r in placed] + [rule["review_cost_above"]]) * 1.1)

    def x(value):
        return pad_left + value / x_top * inner_w

    def y(value):
        return pad_top + inner_h - value * inner_h

    points = []
    for r in placed:
        px, py = x(r["cost_per_case"]), y(r["csat"])
        points.append(
            {
                "key": r["key"],
                "name": r["name"],
                "x": f"{px:.1f}",
                "y": f"{py:.1f}",
                # Labels right of the point, or left of it near the right edge.
                "label_x": f"{px + 7:.1f}" if px < width - 120 else f"{px - 7:.1f}",
                "anchor": "start" if px < width - 120 else "end",
                "verdict": r["verdict"],
                "color": r["color"],
                "title": sentence(r, currency),
            }
        )
    return {
        "width": width,
        "height": height,
        "x0": pad_left,
        "x1": width - pad_right,
        "y0": pad_top,
        "y1": pad_top + inner_h,
        "x_ticks": [
            {"x": f"{x(x_top * f):.1f}", "text": _money(x_top * f, currency).replace(".00", "")}
            for f in (0, 0.25, 0.5, 0.75, 1)
        ],
        "y_ticks": [{"y": f"{y(f):.1f}", "text": _pct(f)} for f in (0, 0.25, 0.5, 0.75, 1)],
        "csat_line": f"{y(rule['review_csat_below']):.1f}",
        "cost_line": f"{x(rule['review_cost_above']):.1f}",
        "x_title": _("Cost per case (%(currency)s)") % {"currency": currency},
        "y_title": _("CSAT (answers 4 or 5)"),
        "points": points,
        "left_out": [r["name"] for r in rows if r not in placed],
        "summary": _("Cost per case against CSAT, one point per channel: %(points)s")
        % {"points": "; ".join(p["title"] for p in points) or _("no channel has both figures")},
    }


def share_chart(series: list[dict], rows: list[dict], width: int = 560, height: int = 240) -> dict:
    """Each slice of the period as a 100 % column, stacked by channel in rank order."""
    pad_left, pad_right, pad_top, pad_bottom = 60, 14, 12, 34
    inner_w, inner_h = width - pad_left - pad_right, height - pad_top - pad_bottom
    slot = inner_w / max(len(series), 1)
    bar = slot * 0.7
    columns = []
    for i, part in enumerate(series):
        left = pad_left + i * slot + (slot - bar) / 2
        bottom = pad_top + inner_h
        segments = []
        for r in rows:
            volume = part["volumes"].get(r["key"], 0)
            if not volume:
                continue
            h = volume / part["total"] * inner_h
            bottom -= h
            segments.append(
                {
                    "y": f"{bottom:.1f}",
                    "h": f"{h:.1f}",
                    "color": r["color"],
                    "title": f"{r['name']}, {part['from']}: {volume} ({_pct(volume / part['total'])})",
                }
            )
        columns.append(
            {
                "x": f"{left:.1f}",
                "w": f"{bar:.1f}",
                "mid": f"{left + bar / 2:.1f}",
                "label": part["from"][5:],
                "segments": segments,
                "empty": not part["total"],
            }
        )
    return {
        "width": width,
        "height": height,
        "x0": pad_left,
        "x1": width - pad_right,
        "y0": pad_top,
        "y1": pad_top + inner_h,
        "y_ticks": [{"y": f"{pad_top + inner_h - f * inner_h:.1f}", "text": _pct(f)} for f in (0, 0.5, 1)],
        "columns": columns,
        "legend": [{"name": r["name"], "color": r["color"]} for r in rows],
        "x_title": _("Start of each slice (month-day)"),
        "summary": _("Share of contacts per channel over %(n)s slices of the period") % {"n": len(series)},
    }


def _trend(row: dict) -> dict | None:
    change = row["volume_change"]
    if change is None:
        return None
    return {
        "text": f"{change * 100:+.0f} %",
        "direction": "up" if change > 0 else "down" if change < 0 else "flat",
    }


def scorecard_context(*, form) -> dict:
    q = _query(form)
    start, end = q["start"], q["end"]
    card = channel_scorecard(start=start, end=end)
    currency, rule = card["currency"], card["rule"]
    rows = card["channels"]
    for i, row in enumerate(rows):
        row["color"] = PALETTE[i % len(PALETTE)]
    table = [
        {
            **row,
            "verdict_label": VERDICTS[row["verdict"]],
            "sentence": sentence(row, currency),
            "reason_texts": _reasons(row, rule, currency),
            "trend": _trend(row),
            "cells": {
                "volume": fmt("volume", row["volume"]),
                "previous_volume": fmt("volume", row["previous_volume"]),
                "share": _pct(row["share"]),
                "cost": _money(row["cost"], currency),
                "cost_per_case": _money(row["cost_per_case"], currency),
                **{
                    k: fmt(k, row[k])
                    for k in ("tme_seconds", "tma_seconds", "fcr", "csat", "abandonment_rate")
                },
                "sla_compliance": fmt("sla_compliance", row["sla_compliance"]),
            },
        }
        for row in rows
    ]
    return {
        "form": form,
        "start": start,
        "end": end,
        "last_day": end - timedelta(days=1),
        "days": (end - start).days,
        "card": card,
        "currency": currency,
        "rows": table,
        "rule_lines": rule_lines(rule, currency),
        "scatter": scatter(rows, rule, currency),
        "share": share_chart(card["share_series"], rows),
        "period_query": f"from={start.isoformat()}&to={end.isoformat()}",
    }


def scorecard_csv(*, form) -> tuple[list[str], list[list]]:
    q = _query(form)
    card = channel_scorecard(start=q["start"], end=q["end"])
    header = [*CSV_COLUMNS, "currency", "from", "to"]
    rows = [
        [
            *(";".join(row["reasons"]) if c == "reasons" else row[c] for c in CSV_COLUMNS),
            card["currency"],
            card["from"],
            card["to"],
        ]
        for row in card["channels"]
    ]
    return header, rows
