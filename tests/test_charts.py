"""The report's charts: every day of the period on the axis, quiet days included, and SVG for any report."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from bot.reports import build_report
from matplotlib.backends.backend_agg import FigureCanvasAgg

from bot.reports.charts import CHARTS, UnknownChartError, calendar, render_chart, tickets_figure
from bot.reports.labels import plan_label, reason_label
from bot.store.database import Store
from tests.test_reports import DAYS, NOW, generate


def test_the_calendar_holds_every_day_of_the_period_and_keeps_the_days_with_figures(store: Store) -> None:
    generate(store, conversations=20)
    report = build_report(store, date(2026, 11, 1), date(2026, 11, 6), NOW)
    days = calendar(report)
    assert [d["date"] for d in days] == [f"2026-11-0{n}" for n in range(1, 7)]
    with_figures = {d["date"]: d for d in report["days"]}
    assert set(with_figures) <= {day.isoformat() for day in DAYS}
    for day in days:
        assert day is with_figures[day["date"]] if day["date"] in with_figures else day == {"date": day["date"]}
    all_time = build_report(store, now=NOW)
    assert calendar(all_time) == all_time["days"]


@pytest.mark.parametrize("period", [(date(2026, 11, 1), date(2026, 11, 30)), (date(2025, 1, 1), date(2025, 1, 2))])
def test_every_chart_is_an_svg_for_a_busy_or_an_empty_period(store: Store, period: tuple) -> None:
    generate(store, conversations=20)
    report = build_report(store, *period, datetime(2026, 12, 1, tzinfo=timezone.utc))
    for name in CHARTS:
        svg = render_chart(name, report).decode("utf-8")
        assert svg.lstrip().startswith("<?xml") and "</svg>" in svg
    with pytest.raises(UnknownChartError):
        render_chart("pie", report)


def test_tickets_are_charted_by_reason_and_plan_in_words_and_no_label_overlaps() -> None:
    report = {"total": {
        "tickets_by_reason": {"requested": 9, "premium_problem": 4, "low_confidence": 3, "not_helpful": 2, "bot_unavailable": 1},
        "tickets_by_plan": {"anonymous": 8, "premium": 6, "free": 3, "pay_as_you_go": 2},
    }}
    svg = render_chart("tickets", report).decode("utf-8")
    for words in ("Asked for a person", "Problem answered, priority plan", "Bot unsure", "Answer did not help",
                  "Bot unavailable", "Not signed in", "Premium", "Free", "Pay as you go"):
        assert f">{words}<" in svg or words in svg, words
    for code in ("premium_problem", "low_confidence", "not_helpful", "bot_unavailable", "pay_as_you_go", "anonymous"):
        assert code not in svg, code
    # Drawn, every label lies inside the figure and clear of every other label and of the other panel's bars.
    figure = tickets_figure(report)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    labels = [label.get_window_extent(renderer) for axes in figure.axes for label in axes.get_yticklabels()]
    assert len(labels) == 9
    width, height = figure.bbox.width, figure.bbox.height
    for box in labels:
        assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= width and box.y1 <= height
    for index, box in enumerate(labels):
        for other in labels[index + 1:]:
            assert not box.overlaps(other)
    plots = [axes.get_window_extent(renderer) for axes in figure.axes]
    for axes, plot in zip(figure.axes, plots):
        for box in (label.get_window_extent(renderer) for label in axes.get_yticklabels()):
            assert box.x1 <= plot.x0 + 1  # left of its own bars
            assert not any(box.overlaps(other) for other in plots)  # and of every panel's


def test_reason_and_plan_labels() -> None:
    assert reason_label("requested") == "Asked for a person" and reason_label("new_reason") == "New reason"
    assert plan_label("anonymous") == "Not signed in" and plan_label("family_plus") == "Family plus"
