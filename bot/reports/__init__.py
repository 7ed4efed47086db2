"""Reports for the support leads: ``python -m bot report``.

- ``figures``: the figures, aggregated by the database, and their one-sentence definitions;
- ``render``: the same report as a text table, CSV (one row per day and figure) or JSON;
- ``charts``: the lead console's charts (matplotlib, SVG).
"""
from bot.reports.figures import DEFINITIONS, build_report, report_with_requests
from bot.reports.render import render

__all__ = ["DEFINITIONS", "build_report", "render", "report_with_requests"]
