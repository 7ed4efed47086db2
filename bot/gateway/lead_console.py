"""The support lead's console at /lead: reports and charts, the unanswered-questions inbox, retraining.

Leads only (``require_lead``): an agent gets 403, a visitor is sent to sign in.
The page itself carries the report's figures and charts (drawn here, no CDN);
the inbox (``lead_inbox``) and the retraining status (``lead_retrain``) are
read by its script from their JSON API, so a slow grouping never holds the
figures back.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from datetime import date
from typing import Any, Dict, Optional, Tuple

import aiohttp_jinja2
from aiohttp import web

from bot.gateway.errors import PeriodError, RequestError
from bot.gateway.keys import ANSWERER, CLOCK, STORE
from bot.gateway.lead_articles import add_article_routes
from bot.gateway.lead_inbox import add_inbox_routes
from bot.gateway.lead_range import report_range
from bot.gateway.lead_retrain import add_retrain_routes
from bot.gateway.lead_reviews import add_review_routes
from bot.gateway.lead_security import add_security_routes
from bot.gateway.staff_auth import csrf_token, require_lead
from bot.lead.kb_edits import choices_of
from bot.reports import DEFINITIONS, build_report, render, report_with_requests
from bot.reports.charts import CHARTS, render_chart
from bot.reports.render import sla_summary
from bot.store.database import StoreError

logger = logging.getLogger(__name__)
FORMATS = {"csv": "text/csv", "json": "application/json", "text": "text/plain"}


class ReportCache:
    """Reports by period for a few seconds, so the page and its four charts cost one query.

    A cache, not state: each gateway process keeps its own, and a figure is at
    most ``ttl`` seconds older than the database.
    """

    def __init__(self, ttl: float = 60.0, size: int = 16) -> None:
        self._ttl = ttl
        self._size = size
        self._entries: "OrderedDict[Tuple[date, date], Tuple[float, Dict[str, Any]]]" = OrderedDict()

    def get(self, key: Tuple[date, date]) -> Optional[Dict[str, Any]]:
        entry = self._entries.get(key)
        if entry is None or time.monotonic() - entry[0] > self._ttl:
            return None
        return entry[1]

    def put(self, key: Tuple[date, date], report: Dict[str, Any]) -> None:
        self._entries[key] = (time.monotonic(), report)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)


REPORTS = web.AppKey("lead_reports", ReportCache)


async def _report(request: web.Request, since: date, until: date, fresh: bool = False) -> Dict[str, Any]:
    """The period's report: computed now for the page and downloads (``fresh``), else cached for charts."""
    cache = request.app[REPORTS]
    cached = None if fresh else cache.get((since, until))
    if cached is not None:
        return cached
    report = await asyncio.to_thread(build_report, request.app[STORE], since, until, request.app[CLOCK]())
    cache.put((since, until), report)
    return report


async def lead_page(request: web.Request) -> web.Response:
    """The console: figures, charts, articles worst first; the inbox and retraining load on the page."""
    staff = await require_lead(request, api=False)
    context: Dict[str, Any] = {
        "staff": staff, "csrf_token": await csrf_token(request), "definitions": DEFINITIONS,
        "error": None, "report": None, "charts": {}, "sla_summaries": {}, "since": "", "until": "",
        # The gateway's knowledge base (re-read when kb/ changes): articles are shown by title.
        "article_titles": dict(choices_of(request.app[ANSWERER].kb.all())),
    }
    status = 200
    try:
        since, until = report_range(request)
        context.update(since=since.isoformat(), until=until.isoformat())
        report = await _report(request, since, until, fresh=True)
        query = f"since={since}&until={until}"
        context.update(report=report, charts={name: f"/lead/charts/{name}.svg?{query}" for name in CHARTS},
                       sla_summaries={p: sla_summary(c) for p, c in report["total"]["first_reply_sla"].items()})
    except PeriodError as error:
        context["error"] = f"Cannot show that period: {error}."
        status = 400
    except StoreError:
        logger.exception("lead page: the report could not be read")
        context["error"] = "The figures are unavailable right now (database). Please try again shortly."
        status = 503
    return aiohttp_jinja2.render_template("lead.html", request, context, status=status)


async def report_download(request: web.Request) -> web.Response:
    """The report for the page's period as CSV, JSON or text (a file download)."""
    await require_lead(request, api=True)
    fmt = request.query.get("format", "csv")
    if fmt not in FORMATS:
        raise RequestError(f"format must be one of {', '.join(FORMATS)}")
    since, until = report_range(request)
    report = await asyncio.to_thread(report_with_requests, request.app[STORE], since, until, request.app[CLOCK]())
    filename = f"deskmate-report-{since}-{until}.{'txt' if fmt == 'text' else fmt}"
    return web.Response(
        text=render(report, fmt), content_type=FORMATS[fmt], charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


async def chart(request: web.Request) -> web.Response:
    """One chart of the period's report, as SVG."""
    await require_lead(request, api=True)
    since, until = report_range(request)
    report = await _report(request, since, until)
    svg = await asyncio.to_thread(render_chart, request.match_info["name"], report)
    return web.Response(body=svg, content_type="image/svg+xml", headers={"Cache-Control": "private, max-age=60"})


def add_lead_routes(app: web.Application) -> None:
    """Register the lead console and its API."""
    app[REPORTS] = ReportCache()
    app.router.add_get("/lead", lead_page)
    app.router.add_get("/lead/report", report_download)
    app.router.add_get("/lead/charts/{name}.svg", chart)
    add_inbox_routes(app)
    add_retrain_routes(app)
    add_review_routes(app)
    add_article_routes(app)
    add_security_routes(app)
