"""The lead console's retraining: start a job in the background and follow its progress.

The job itself (train, check, load only if every check passes) is
``bot.training.retrain``; one runs at a time across every gateway process.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, List, Optional

from aiohttp import web

from bot.gateway.errors import json_error, request_message
from bot.gateway.keys import SETTINGS, STORE
from bot.gateway.staff_auth import CSRF_HEADER, audit_staff_action, check_csrf, require_lead
from bot.store.retrain_jobs import JobRecord, latest_job
from bot.training.retrain import start_retrain

logger = logging.getLogger(__name__)


def comparison_rows(report: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The candidate's dev eval figures beside the current model's and the floors, one row per figure.

    Each row: ``{key, label, candidate, current, bound, sense ("min" | "max"),
    cases, passed, reason, note}``; fractions 0..1, None where not measured.
    Per-intent rows only for intents below the floor (or that moved against
    the current model), so the table stays short.
    """
    rows = []
    for check in report.get("figure_checks") or []:
        is_intent = str(check.get("key", "")).startswith("intent:")
        current, value = check.get("baseline"), check.get("value")
        moved_down = current is not None and value is not None and value < current
        if is_intent and check.get("passed") and not check.get("note") and not moved_down:
            continue
        rows.append({
            "key": check.get("key"), "label": check.get("label"), "candidate": value, "current": current,
            "bound": check.get("bound"), "sense": check.get("sense"), "cases": check.get("cases"),
            "passed": bool(check.get("passed")), "reason": check.get("reason") or "", "note": check.get("note") or "",
        })
    return rows


def job_view(job: Optional[JobRecord]) -> Optional[Dict[str, Any]]:
    """A retraining job as the console shows it: state, progress, each check's outcome, and the
    candidate's figures beside the current model's (``comparison``), which check failed, and what to do."""
    if job is None:
        return None
    detail = job.detail or {}
    report = detail.get("checks") or {}
    baseline = report.get("baseline") or {}
    return {
        "failed_check": report.get("failed_check"),
        "advice": report.get("advice") or "",
        "comparison": comparison_rows(report),
        "current_model": baseline.get("model") or detail.get("current_model"),
        "candidate_model": report.get("model"),
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
    job = await asyncio.to_thread(latest_job, request.app[STORE])
    return web.json_response({"job": _public(request, job_view(job))})


def _public(request: web.Request, view: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """A job view whose words (a failed job's error, the reasons, the advice) name no server path."""
    if view is None:
        return None
    shown = dict(view)
    for key in ("message", "reason", "advice"):
        shown[key] = request_message(request, str(view.get(key) or ""))
    shown["checks"] = [{**check, "reason": request_message(request, str(check.get("reason") or ""))}
                       for check in view.get("checks") or []]
    return shown


async def retrain_start_api(request: web.Request) -> web.Response:
    """Start retraining in the background (one job at a time, across every gateway process: else 409)."""
    staff = await require_lead(request, api=True)
    await check_csrf(request, request.headers.get(CSRF_HEADER))
    try:
        await asyncio.to_thread(start_retrain, request.app[SETTINGS], request.app[STORE], staff["email"])
    except OSError as error:
        logger.exception("lead console: retraining could not start")
        return json_error(500, request_message(request, f"the retraining process could not start: {error}"))
    job = await asyncio.to_thread(latest_job, request.app[STORE])
    await audit_staff_action(request, staff, "retrain", f"job {job.id}" if job else "job")
    return web.json_response({"job": _public(request, job_view(job))}, status=202)


def add_retrain_routes(app: web.Application) -> None:
    """Register the retraining API."""
    app.router.add_get("/lead/api/retrain", retrain_status_api)
    app.router.add_post("/lead/api/retrain", retrain_start_api)
