"""The lead console's inbox: missed messages grouped by similarity, and each one's decision.

A decision (``bot.lead.decisions``) may edit kb/ or data/nlu/ (one added
line) and is then recorded; a refused edit records nothing.
"""
from __future__ import annotations

import asyncio
from datetime import date
from typing import Any, Dict

from aiohttp import web

from bot.gateway.errors import RequestError, json_body, path_id
from bot.gateway.keys import ANSWERER, CLOCK, SETTINGS, STORE
from bot.gateway.lead_range import report_range
from bot.gateway.staff_auth import CSRF_HEADER, audit_staff_action, check_csrf, require_lead
from bot.lead.decisions import Workspace, decide
from bot.lead.grouping import MissGroup, group_misses
from bot.lead.kb_edits import choices_of
from bot.lead.misses import Miss, collect_misses
from bot.lead.nlu_edits import intent_choices
from bot.lead.training_edits import TrainingDataEditError
from bot.protocol import InboxAction
from bot.settings import Settings
from bot.store.inbox import DecisionRecord, MessageNotFoundError, new_article_requests


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
    store = request.app[STORE]
    search = request.app[ANSWERER].article_search()
    # Grouping is quadratic: only the newest undecided misses (deciding them brings older ones up).
    limit = settings.miss_group_limit
    misses = collect_misses(store, since, until, limit=limit)
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
        "new_articles": [decision_view(d) for d in new_article_requests(store)],
    }


async def misses_api(request: web.Request) -> web.Response:
    """What the knowledge base lacks in the period: undecided misses grouped by similarity, biggest first."""
    await require_lead(request, api=True)
    since, until = report_range(request)
    return web.json_response(await asyncio.to_thread(_misses_payload, request, since, until))


async def decide_api(request: web.Request) -> web.Response:
    """Decide one missed message: add it to an article or an intent, mark "needs a new article", or dismiss."""
    staff = await require_lead(request, api=True)
    await check_csrf(request, request.headers.get(CSRF_HEADER))
    message_id = path_id(request, "message_id", MessageNotFoundError)
    body = await json_body(request, "{action, target, text}")
    fields = [body.get(name) if isinstance(body, dict) else None for name in ("action", "target", "text")]
    if not all(value is None or isinstance(value, str) for value in fields):
        raise RequestError("send JSON: {action, target, text}, each a string")
    action_name, target, text = (value or "" for value in fields)
    try:
        action = InboxAction(action_name)
    except ValueError:
        raise RequestError("action must be article, intent, new_article or dismiss") from None
    if action in (InboxAction.ARTICLE, InboxAction.INTENT) and not target:
        raise RequestError(f"choose the {action.value} to add the phrasing to")
    settings: Settings = request.app[SETTINGS]
    store = request.app[STORE]
    workspace = Workspace(settings.kb_dir, settings.nlu_dir, settings.project_root)
    try:
        decision, summary = await asyncio.to_thread(
            decide, store, workspace, message_id, action, target, text, staff["email"], request.app[CLOCK]()
        )
    except TrainingDataEditError:
        raise  # refused with its reason: 400, or 409 for a duplicate (the error middleware)
    except ValueError as error:
        raise RequestError(str(error)) from error
    await audit_staff_action(request, staff, "decide_miss", f"message {message_id}", decision=action.value,
                             article_or_intent=target or None)
    payload: Dict[str, Any] = {"decision": decision_view(decision), "summary": summary}
    if action is InboxAction.NEW_ARTICLE:
        payload["new_articles"] = [decision_view(d) for d in await asyncio.to_thread(new_article_requests, store)]
    return web.json_response(payload)


def add_inbox_routes(app: web.Application) -> None:
    """Register the inbox API."""
    app.router.add_get("/lead/api/misses", misses_api)
    app.router.add_post("/lead/api/misses/{message_id}", decide_api)
