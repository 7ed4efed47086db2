"""The support lead's console at /lead: reports and charts, the unanswered-questions inbox, retraining.

Leads only (``require_lead``): an agent gets 403, a visitor is sent to sign in.
The page itself carries the report's figures and charts (drawn here, no CDN);
the inbox and the retraining status are read by its script from the JSON
API below, so a slow grouping never holds the figures back.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from datetime import date, timedelta
from typing import Any, Dict, Optional, Tuple

import aiohttp_jinja2
from aiohttp import web

from bot.gateway.keys import ANSWERER, CONVERSATIONS, SETTINGS
from bot.gateway.staff_auth import CSRF_HEADER, check_csrf, csrf_token, require_lead
from bot.kb.edits import add_article_question, article_choices
from bot.nlu.edits import add_intent_example, intent_choices
from bot.reports import DEFINITIONS, build_report, render
from bot.reports.charts import CHARTS, UnknownChartError, render_chart
from bot.reports.grouping import MissGroup, group_misses
from bot.reports.misses import Miss, collect_misses
from bot.settings import Settings
from bot.store.database import StoreError
from bot.store.messages import get_message
from bot.store.inbox import AlreadyDecidedError, DecisionRecord, MessageNotFoundError, decision_for, new_article_requests, record_decision
from bot.store.retrain_jobs import JobRecord, RetrainBusyError, latest_job
from bot.training.retrain import start_retrain
from bot.training_edits import DuplicateExampleError, TrainingDataEditError

logger = logging.getLogger(__name__)
DEFAULT_DAYS = 30
MAX_DAYS = 366
FORMATS = {"csv": "text/csv", "json": "application/json", "text": "text/plain"}


class RangeError(ValueError):
    """The dates asked for cannot make a report."""


def report_range(request: web.Request) -> Tuple[date, date]:
    """``since`` and ``until`` from the query (ISO dates); by default the last 30 days to today."""
    today = request.app[CONVERSATIONS].handoff.now().date()
    try:
        until = date.fromisoformat(request.query["until"]) if request.query.get("until") else today
        since = date.fromisoformat(request.query["since"]) if request.query.get("since") else until - timedelta(days=DEFAULT_DAYS - 1)
    except ValueError:
        raise RangeError("dates must look like 2026-11-23") from None
    if since > until:
        raise RangeError(f"the start ({since}) is after the end ({until})")
    if (until - since).days >= MAX_DAYS:
        raise RangeError(f"at most {MAX_DAYS} days at a time; download the CSV per period for more")
    return since, until


class ReportCache:
    """Reports by period for a few seconds, so the page and its four charts cost one query.

    A cache, not state: each gateway process keeps its own, and a figure is at
    most ``ttl`` seconds older than the database.
    """

    def __init__(self, ttl: float = 60.0, size: int = 16) -> None:
        self._ttl = ttl
        self._size = size
        self._entries: "OrderedDict[Tuple[date, date], Tuple[float, Dict[str, Any]]]" = OrderedDict()

    def get(self, key: Tuple[date, date]) -> Any:
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
    report = None if fresh else cache.get((since, until))
    if report is None:
        settings = request.app[SETTINGS]
        now = request.app[CONVERSATIONS].handoff.now()
        report = await asyncio.to_thread(build_report, settings.resolved_database_url(), since, until, now)
        cache.put((since, until), report)
    return report


async def lead_page(request: web.Request) -> web.Response:
    """The console: figures, charts, articles worst first; the inbox and retraining load on the page."""
    staff = await require_lead(request, api=False)
    context: Dict[str, Any] = {
        "staff": staff, "csrf_token": await csrf_token(request), "definitions": DEFINITIONS,
        "error": None, "report": None, "charts": {}, "since": "", "until": "",
    }
    status = 200
    try:
        since, until = report_range(request)
        context.update(since=since.isoformat(), until=until.isoformat())
        report = await _report(request, since, until, fresh=True)
        query = f"since={since}&until={until}"
        context.update(report=report, charts={name: f"/lead/charts/{name}.svg?{query}" for name in CHARTS})
    except RangeError as error:
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
        return web.json_response({"error": f"format must be one of {', '.join(FORMATS)}"}, status=400)
    try:
        since, until = report_range(request)
        report = await _report(request, since, until, fresh=True)
    except RangeError as error:
        return web.json_response({"error": str(error)}, status=400)
    except StoreError:
        return web.json_response({"error": "the database is unavailable"}, status=503)
    filename = f"deskmate-report-{since}-{until}.{'txt' if fmt == 'text' else fmt}"
    return web.Response(
        text=render(report, fmt), content_type=FORMATS[fmt], charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


async def chart(request: web.Request) -> web.Response:
    """One chart of the period's report, as SVG."""
    await require_lead(request, api=True)
    try:
        since, until = report_range(request)
        report = await _report(request, since, until)
        svg = await asyncio.to_thread(render_chart, request.match_info["name"], report)
    except UnknownChartError:
        raise web.HTTPNotFound() from None
    except RangeError as error:
        return web.json_response({"error": str(error)}, status=400)
    except StoreError:
        return web.json_response({"error": "the database is unavailable"}, status=503)
    return web.Response(body=svg, content_type="image/svg+xml", headers={"Cache-Control": "private, max-age=60"})


def _json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def decision_view(decision: DecisionRecord) -> Dict[str, Any]:
    """A decision as the console shows it."""
    return {
        "message_id": decision.message_id, "action": decision.action, "target": decision.target,
        "text": decision.text, "decided_by": decision.decided_by, "decided_at": decision.decided_at.isoformat(),
    }


def group_view(group: MissGroup, misses: Dict[int, Miss], titles: Dict[str, str], min_score: float) -> Dict[str, Any]:
    """A group of similar misses, with every message for the lead to decide.

    Search guesses below ``min_score`` (what the bot itself would not suggest)
    are left out: a topic with no close article is shown as one.
    """
    guesses = [{"article_id": g.article_id, "title": g.title, "score": g.score}
               for g in group.search_guesses if g.score >= min_score]
    seen = {g["article_id"] for g in guesses}
    for article_id, _count in group.recorded_guesses:  # what the bot itself offered, when search missed it
        if article_id not in seen and article_id in titles:
            guesses.append({"article_id": article_id, "title": titles[article_id], "score": None})
            seen.add(article_id)
    messages = []
    for message_id in group.message_ids:
        miss = misses[message_id]
        messages.append({
            "id": miss.message_id, "text": miss.text, "created_at": miss.created_at.isoformat(),
            "sources": list(miss.sources),
            # The message's own guesses first (the bot offered them), then the group's.
            "guesses": list(dict.fromkeys([*miss.guesses, *(g["article_id"] for g in guesses)])),
        })
    return {"count": group.count, "examples": list(group.examples), "sources": group.sources,
            "guesses": guesses, "messages": messages}


def _misses_payload(request: web.Request, since: date, until: date) -> Dict[str, Any]:
    settings: Settings = request.app[SETTINGS]
    url = settings.resolved_database_url()
    search = request.app[ANSWERER].article_search()
    # Grouping is quadratic: only the newest undecided misses (deciding them brings older ones up).
    limit = settings.miss_group_limit
    misses = collect_misses(url, since, until, limit=limit)
    groups = group_misses(misses, search)
    by_id = {m.message_id: m for m in misses}
    articles = article_choices(settings.kb_dir)
    titles = dict(articles)
    return {
        "since": since.isoformat(), "until": until.isoformat(),
        "messages": len(misses), "capped": len(misses) >= limit,
        "groups": [group_view(g, by_id, titles, settings.suggest_min_score) for g in groups],
        "articles": [{"id": article_id, "title": title} for article_id, title in articles],
        "intents": intent_choices(settings.nlu_dir),
        "new_articles": [decision_view(d) for d in new_article_requests(url)],
    }


async def misses_api(request: web.Request) -> web.Response:
    """What the knowledge base lacks in the period: undecided misses grouped by similarity, biggest first."""
    await require_lead(request, api=True)
    try:
        since, until = report_range(request)
        payload = await asyncio.to_thread(_misses_payload, request, since, until)
    except RangeError as error:
        return _json_error(400, str(error))
    except StoreError:
        logger.exception("lead inbox: the misses could not be read")
        return _json_error(503, "the database is unavailable")
    return web.json_response(payload)


def _display_path(path: Any, settings: Settings) -> str:
    try:
        return str(path.relative_to(settings.project_root))
    except ValueError:
        return str(path)


def _decide(settings: Settings, message_id: int, action: str, target: str, text: str, lead: str,
            now: Any) -> Tuple[DecisionRecord, str]:
    """Carry out a lead's decision: edit kb/ or data/nlu/ if asked, then record it. Returns (decision, summary)."""
    url = settings.resolved_database_url()
    message = get_message(url, message_id)
    if message is None or message.sender != "visitor":
        raise MessageNotFoundError(f"there is no visitor message {message_id}")
    earlier = decision_for(url, message_id)
    if earlier is not None:
        raise AlreadyDecidedError(f"{earlier.decided_by} already decided this message ({earlier.action})")
    summary = {"new_article": "Marked: needs a new article.", "dismiss": "Dismissed."}.get(action, "")
    if action == "article":
        path = add_article_question(settings.kb_dir, target, text)
        summary = f"Added to {_display_path(path, settings)}. Retrain to use it."
    elif action == "intent":
        path = add_intent_example(settings.nlu_dir, target, text)
        summary = f"Added to intent {target} in {_display_path(path, settings)}. Retrain to use it."
    decision = record_decision(url, message_id, action, target or None, text, lead, now)
    return decision, summary


async def decide_api(request: web.Request) -> web.Response:
    """Decide one missed message: add it to an article or an intent, mark "needs a new article", or dismiss."""
    staff = await require_lead(request, api=True)
    await check_csrf(request, request.headers.get(CSRF_HEADER))
    try:
        message_id = int(request.match_info["message_id"])
        body = await request.json()
        action = str(body.get("action") or "")
        target = str(body.get("target") or "")
        text = str(body.get("text") or "")
    except (ValueError, AttributeError):
        return _json_error(400, "send JSON: {action, target, text}")
    if action not in ("article", "intent", "new_article", "dismiss"):
        return _json_error(400, "action must be article, intent, new_article or dismiss")
    if action in ("article", "intent") and not target:
        return _json_error(400, f"choose the {action} to add the phrasing to")
    settings: Settings = request.app[SETTINGS]
    now = request.app[CONVERSATIONS].handoff.now()
    try:
        decision, summary = await asyncio.to_thread(
            _decide, settings, message_id, action, target, text, staff["email"], now
        )
    except (AlreadyDecidedError, DuplicateExampleError) as error:
        return _json_error(409, str(error))
    except MessageNotFoundError as error:
        return _json_error(404, str(error))
    except (TrainingDataEditError, ValueError) as error:
        return _json_error(400, str(error))
    except StoreError:
        logger.exception("lead inbox: decision on message %s failed", message_id)
        return _json_error(503, "the database is unavailable; try again")
    payload: Dict[str, Any] = {"decision": decision_view(decision), "summary": summary}
    if action == "new_article":
        url = settings.resolved_database_url()
        payload["new_articles"] = [decision_view(d) for d in await asyncio.to_thread(new_article_requests, url)]
    return web.json_response(payload)


def job_view(job: Optional[JobRecord]) -> Optional[Dict[str, Any]]:
    """A retraining job as the console shows it: state, progress, and each check's outcome."""
    if job is None:
        return None
    detail = job.detail or {}
    report = detail.get("checks") or {}
    return {
        "id": job.id, "status": job.status, "stage": job.stage, "progress": job.progress,
        "message": detail.get("message") or detail.get("error") or "",
        "reason": detail.get("reason") or report.get("reason") or "",
        "checks": [
            {"name": c["name"], "title": c["title"], "status": c["status"], "reason": c.get("reason", "")}
            for c in report.get("checks", [])
        ],
        "figures": report.get("figures") or {},
        "requested_by": job.requested_by,
        "created_at": job.created_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


async def retrain_status_api(request: web.Request) -> web.Response:
    """The latest retraining job (running or finished), or null."""
    await require_lead(request, api=True)
    try:
        job = await asyncio.to_thread(latest_job, request.app[SETTINGS].resolved_database_url())
    except StoreError:
        return _json_error(503, "the database is unavailable")
    return web.json_response({"job": job_view(job)})


async def retrain_start_api(request: web.Request) -> web.Response:
    """Start retraining in the background (one job at a time, across every gateway process)."""
    staff = await require_lead(request, api=True)
    await check_csrf(request, request.headers.get(CSRF_HEADER))
    settings: Settings = request.app[SETTINGS]
    try:
        await asyncio.to_thread(start_retrain, settings, staff["email"])
        job = await asyncio.to_thread(latest_job, settings.resolved_database_url())
    except RetrainBusyError as error:
        return _json_error(409, f"a retraining is already running: {error}")
    except StoreError:
        logger.exception("lead console: retraining could not start")
        return _json_error(503, "the database is unavailable; nothing was started")
    except OSError as error:
        logger.exception("lead console: retraining could not start")
        return _json_error(500, f"the retraining process could not start: {error}")
    return web.json_response({"job": job_view(job)}, status=202)


def add_lead_routes(app: web.Application) -> None:
    """Register the lead console and its API."""
    app[REPORTS] = ReportCache()
    app.router.add_get("/lead", lead_page)
    app.router.add_get("/lead/report", report_download)
    app.router.add_get("/lead/charts/{name}.svg", chart)
    app.router.add_get("/lead/api/misses", misses_api)
    app.router.add_post("/lead/api/misses/{message_id}", decide_api)
    app.router.add_get("/lead/api/retrain", retrain_status_api)
    app.router.add_post("/lead/api/retrain", retrain_start_api)
