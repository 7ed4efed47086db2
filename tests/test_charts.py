"""The report's charts: every day of the period on the axis, quiet days included, and SVG for any report."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from bot.reports import build_report
from bot.reports.charts import CHARTS, UnknownChartError, calendar, render_chart
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
