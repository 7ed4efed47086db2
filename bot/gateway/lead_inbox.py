"""The lead console's inbox: missed messages grouped by similarity, and each one's decision.

A decision may edit kb/ or data/nlu/ (one added line, ``bot.kb.edits`` /
``bot.nlu.edits``) and is then recorded (``bot.store.inbox``); a refused
edit records nothing.
"""
from __future__ import annotations

import asyncio
import logging
from datetime import date
from typing import Any, Dict, Tuple

from aiohttp import web

from bot.gateway.keys import ANSWERER, CONVERSATIONS, SETTINGS
from bot.gateway.lead_range import RangeError, json_error, report_range
from bot.gateway.staff_auth import CSRF_HEADER, check_csrf, require_lead
from bot.kb.edits import add_article_question, choices_of
from bot.nlu.edits import add_intent_example, intent_choices
from bot.reports.grouping import MissGroup, group_misses
from bot.reports.misses import Miss, collect_misses
from bot.settings import Settings
from bot.store.database import StoreError
from bot.store.inbox import (
    AlreadyDecidedError,
    DecisionRecord,
    MessageNotFoundError,
    decision_for,
    new_article_requests,
    record_decision,
)
from bot.store.messages import get_message
from bot.training_edits import DuplicateExampleError, TrainingDataEditError

logger = logging.getLogger(__name__)


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
    groups = group_misses(misses, search, settings.miss_group_distance)
    by_id = {m.message_id: m for m in misses}
    # The gateway's knowledge base (re-read when kb/ changes), not a parse of every article per request.
    articles = choices_of(request.app[ANSWERER].kb.all())
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
        return json_error(400, str(error))
    except StoreError:
        logger.exception("lead inbox: the misses could not be read")
        return json_error(503, "the database is unavailable")
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
        return json_error(400, "send JSON: {action, target, text}")
    if action not in ("article", "intent", "new_article", "dismiss"):
        return json_error(400, "action must be article, intent, new_article or dismiss")
    if action in ("article", "intent") and not target:
        return json_error(400, f"choose the {action} to add the phrasing to")
    settings: Settings = request.app[SETTINGS]
    now = request.app[CONVERSATIONS].handoff.now()
    try:
        decision, summary = await asyncio.to_thread(
            _decide, settings, message_id, action, target, text, staff["email"], now
        )
    except (AlreadyDecidedError, DuplicateExampleError) as error:
        return json_error(409, str(error))
    except MessageNotFoundError as error:
        return json_error(404, str(error))
    except (TrainingDataEditError, ValueError) as error:
        return json_error(400, str(error))
    except StoreError:
        logger.exception("lead inbox: decision on message %s failed", message_id)
        return json_error(503, "the database is unavailable; try again")
    payload: Dict[str, Any] = {"decision": decision_view(decision), "summary": summary}
    if action == "new_article":
        url = settings.resolved_database_url()
        payload["new_articles"] = [decision_view(d) for d in await asyncio.to_thread(new_article_requests, url)]
    return web.json_response(payload)


def add_inbox_routes(app: web.Application) -> None:
    """Register the inbox API."""
    app.router.add_get("/lead/api/misses", misses_api)
    app.router.add_post("/lead/api/misses/{message_id}", decide_api)
