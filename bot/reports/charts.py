"""The report's charts, drawn by matplotlib as SVG and served by the gateway itself (no CDN).

Each chart is a function of the report dict (``build_report``'s result), so
the figures on the page and in the charts can never disagree. Text stays
text (``svg.fonttype: none``: several times faster to draw than glyph paths);
matplotlib escapes it as XML, and the labels are the store's own names
(days; reasons and plans in words, bot/reports/labels.py), never a visitor's words.
"""
from __future__ import annotations

import io
from datetime import date, timedelta
from typing import Any, Callable, Dict, List, Optional, Tuple

import matplotlib

matplotlib.use("Agg")  # no display on servers; set before anything imports pyplot
matplotlib.rcParams["svg.fonttype"] = "none"
matplotlib.rcParams["svg.hashsalt"] = "deskmate"  # the same figures give the same file

from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from bot.reports.labels import plan_label, reason_label  # noqa: E402

INK = "#1f2933"
MUTED = "#7b8794"
COLOURS = ("#2f6fde", "#e0863a", "#3f9c6d", "#c2417a", "#7d5bd6", "#8a8f98")
MAX_DAY_TICKS = 8
MIN_DAY_SLOTS = 7  # a period of one or two days does not get bars as wide as the chart


class UnknownChartError(LookupError):
    """No chart has that name."""


def _figure(height: float = 3.2) -> Figure:
    # Fixed margins instead of tight_layout(), which draws every chart twice.
    # Drawn about the size it is shown (two charts side by side), so the text stays legible.
    figure = Figure(figsize=(6.0, height), dpi=100)
    figure.subplots_adjust(left=0.08, right=0.98, top=0.88, bottom=0.12, wspace=0.45)
    figure.patch.set_alpha(0.0)
    return figure


def _style(axes: Any, title: str) -> None:
    axes.set_title(title, loc="left", fontsize=12, color=INK)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    axes.tick_params(colors=MUTED, labelsize=9)
    axes.grid(axis="y", color="#e4e7eb", linewidth=0.8)
    axes.set_axisbelow(True)


def _day_ticks(axes: Any, days: List[str]) -> None:
    axes.set_xlim(-0.6, max(len(days), MIN_DAY_SLOTS) - 0.4)
    step = max(1, -(-len(days) // MAX_DAY_TICKS))
    positions = list(range(0, len(days), step))
    axes.set_xticks(positions)
    axes.set_xticklabels([days[i][5:] for i in positions], rotation=0)


def calendar(report: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Every day of the report's period in order, a day without figures as ``{"date": d}``.

    A trend needs the quiet days too: the report lists only days with data.
    Without both ends (an all-time report) it is the days the report has.
    """
    by_day = {d["date"]: d for d in report["days"]}
    if not (report.get("since") and report.get("until")):
        return list(report["days"])
    first, last = date.fromisoformat(report["since"]), date.fromisoformat(report["until"])
    days = (first + timedelta(days=n) for n in range((last - first).days + 1))
    return [by_day.get(d.isoformat(), {"date": d.isoformat()}) for d in days]


def _empty(axes: Any, message: str = "No data in this period") -> None:
    axes.text(0.5, 0.5, message, ha="center", va="center", color=MUTED, transform=axes.transAxes)
    axes.set_xticks([])
    axes.set_yticks([])


def _svg(figure: Figure) -> bytes:
    out = io.BytesIO()
    figure.savefig(out, format="svg")
    # matplotlib 3.5 quotes the generic family ('sans-serif'), which CSS reads
    # as a font of that name: browsers then fall back to a serif face.
    return out.getvalue().replace(b"'sans-serif'", b"sans-serif")


def _daily_chart(report: Dict[str, Any], title: str, draw: Callable[[Any, List[int], List[Dict[str, Any]]], None]) -> bytes:
    """A chart with a day per slot over the whole period: ``draw(axes, x, periods)`` adds the series."""
    figure = _figure()
    axes = figure.add_subplot()
    _style(axes, title)
    if not report["days"]:
        _empty(axes)
        return _svg(figure)
    periods = calendar(report)
    draw(axes, list(range(len(periods))), periods)
    _day_ticks(axes, [d["date"] for d in periods])
    return _svg(figure)


def volume_chart(report: Dict[str, Any]) -> bytes:
    """Conversations and tickets per day (bars)."""
    return _daily_chart(report, "Conversations and tickets per day", _draw_volume)


def _draw_volume(axes: Any, x: List[int], periods: List[Dict[str, Any]]) -> None:
    axes.bar([i - 0.2 for i in x], [d.get("conversations", 0) for d in periods], 0.4,
             label="conversations", color=COLOURS[0])
    axes.bar([i + 0.2 for i in x], [d.get("tickets", 0) for d in periods], 0.4, label="tickets", color=COLOURS[1])
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    # Above the plot, beside the title: bars fill the whole height.
    axes.legend(frameon=False, fontsize=9, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2)


def _percent_series(periods: List[Dict[str, Any]], pick: Callable[[Dict[str, Any]], Optional[float]]) -> List[float]:
    # A day without the figure (no conversations, no replies) is a gap, not a zero.
    values = [pick(d) if "conversations" in d else None for d in periods]
    return [float("nan") if value is None else value * 100 for value in values]


def _sla_share(priority: str) -> Callable[[Dict[str, Any]], Optional[float]]:
    """A period's share of first replies within SLA for ``priority``: within_sla / due, the tickets
    opened that day whose due time has passed (None when none has: a gap, not a zero)."""
    return lambda period: period["first_reply_sla"].get(priority, {}).get("share")


def rates_chart(report: Dict[str, Any]) -> bytes:
    """Containment, fallback rate and first replies within SLA per day (lines, percent)."""
    series: List[Tuple[str, Callable[[Dict[str, Any]], Optional[float]]]] = [
        ("containment", lambda d: d["containment"]),
        ("fallback rate", lambda d: d["fallback_rate"]),
    ]
    for priority in sorted(report["total"]["first_reply_sla"]):
        series.append((f"first reply within SLA ({priority})", _sla_share(priority)))

    def draw(axes: Any, x: List[int], periods: List[Dict[str, Any]]) -> None:
        for colour, (label, pick) in zip(COLOURS, series):
            axes.plot(x, _percent_series(periods, pick), marker="o", markersize=3, linewidth=1.6,
                      label=label, color=colour)
        axes.set_ylim(0, 105)
        axes.legend(frameon=False, fontsize=9, loc="lower left", ncol=2)

    return _daily_chart(report, "Rates per day (%)", draw)


def tickets_chart(report: Dict[str, Any]) -> bytes:
    """Tickets in the period by reason and by plan (horizontal bars, one panel above the other), each
    labelled in words (bot.reports.labels) with its count at the end of its bar."""
    return _svg(tickets_figure(report))


def tickets_figure(report: Dict[str, Any]) -> Figure:
    """The figure of ``tickets_chart`` (before it is drawn as SVG)."""
    total = report["total"]
    panels = [
        ("Tickets by reason", [(reason_label(k), v) for k, v in total["tickets_by_reason"].items()]),
        ("Tickets by plan", [(plan_label(k), v) for k, v in total["tickets_by_plan"].items()]),
    ]
    rows = [max(1, len(items)) for _, items in panels]
    # Each bar a fixed height, so that labels never crowd; the label column as wide as the longest label.
    figure = _figure(height=max(3.2, 1.1 + 0.32 * sum(rows)))
    longest = max((len(name) for _, items in panels for name, _ in items), default=10)
    figure.subplots_adjust(left=min(0.5, 0.04 + longest * 0.0125), right=0.94, top=0.9, bottom=0.08, hspace=0.6)
    grid = figure.add_gridspec(2, 1, height_ratios=rows)
    for index, (title, items) in enumerate(panels):
        axes = figure.add_subplot(grid[index])
        _style(axes, title)
        axes.grid(axis="y", visible=False)
        axes.grid(axis="x", color="#e4e7eb", linewidth=0.8)
        items = sorted(items, key=lambda item: (item[1], item[0]))
        if not items:
            _empty(axes, "No tickets")
            axes.set_yticks([])
            continue
        bars = axes.barh([name for name, _ in items], [count for _, count in items], color=COLOURS[index], height=0.6)
        axes.bar_label(bars, padding=3, fontsize=9, color=INK)
        axes.tick_params(axis="y", labelsize=10, colors=INK)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_xlim(0, max(count for _, count in items) * 1.15 + 0.5)
    return figure


def csat_chart(report: Dict[str, Any]) -> bytes:
    """The 1-5 rating distribution, bot-only against agent conversations (grouped bars)."""
    figure = _figure()
    axes = figure.add_subplot()
    _style(axes, "Customer satisfaction (ratings 1-5)")
    csat = report["total"]["csat"]
    if not any(group["count"] for group in csat.values()):
        _empty(axes, "No ratings in this period")
        return _svg(figure)
    stars = ["1", "2", "3", "4", "5"]
    for offset, (colour, (name, group)) in zip((-0.2, 0.2), zip(COLOURS, csat.items())):
        average = "–" if group["average"] is None else f"{group['average']:.2f}"
        label = f"{name.replace('_', '-')} (n={group['count']}, avg {average})"
        axes.bar([int(s) + offset for s in stars], [group["distribution"][s] for s in stars], 0.4,
                 label=label, color=colour)
    axes.set_xticks([1, 2, 3, 4, 5])
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.legend(frameon=False, fontsize=9, loc="upper left", bbox_to_anchor=(0.0, 0.98))
    return _svg(figure)


CHARTS: Dict[str, Callable[[Dict[str, Any]], bytes]] = {
    "volume": volume_chart,
    "rates": rates_chart,
    "tickets": tickets_chart,
    "csat": csat_chart,
}


def render_chart(name: str, report: Dict[str, Any]) -> bytes:
    """Chart ``name`` of ``report`` as SVG bytes; UnknownChartError for a name not in CHARTS."""
    try:
        draw = CHARTS[name]
    except KeyError:
        raise UnknownChartError(f"no chart named {name!r} (charts: {', '.join(CHARTS)})") from None
    return draw(report)
