"""The lead console's inbox: missed messages grouped by similarity, and each one's decision.

A decision (``bot.lead.decisions``) may edit kb/ or data/nlu/ (one added
line) and is then recorded; a refused edit records nothing.
"""
from __future__ import annotations

import asyncio
from datetime import date
from typing import Any, Dict, List, Tuple

from aiohttp import web

from bot.gateway.errors import RequestError, json_body, path_id, request_message
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
from bot.store.inbox import AlreadyDecidedError, DecisionRecord, MessageNotFoundError, new_article_requests
from bot.store.messages import MessageRecord, conversation_messages, get_message
from bot.store.staff import staff_names
from bot.store.tickets import tickets_for_conversation


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
            "id": miss.message_id, "conversation_id": miss.conversation_id, "text": miss.text,
            "created_at": miss.created_at.isoformat(), "sources": list(miss.sources),
            # The message's own guesses first (the bot offered them), then the group's.
            "guesses": [a for a in dict.fromkeys([*miss.guesses, *(g["article_id"] for g in guesses)])
                        if a not in miss.rejected],
            "rejected": list(miss.rejected),
            # Pre-selected only when confident (bot.lead.grouping): else the lead chooses.
            "suggested": group.confident.get(miss.message_id),
        })
    return {"count": group.count, "examples": list(group.examples), "sources": group.sources,
            "guesses": guesses, "suggested": group.suggested, "refused": group.refused, "messages": messages}


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
    views = [group_view(g, by_id, titles, settings.suggest_min_score) for g in groups]
    return {
        "since": since.isoformat(), "until": until.isoformat(),
        "messages": len(misses), "capped": len(misses) >= limit,
        # What the bot refused as outside what it covers is its own list: most were rightly refused,
        # so they are no topic the knowledge base lacks until a lead says so.
        "groups": [view for view in views if not view["refused"]],
        "refused_groups": [view for view in views if view["refused"]],
        "articles": [{"id": article_id, "title": title} for article_id, title in articles],
        "intents": intent_choices(settings.nlu_dir),
        "new_articles": [decision_view(d) for d in new_article_requests(store)],
    }


async def misses_api(request: web.Request) -> web.Response:
    """What the knowledge base lacks in the period: undecided misses grouped by similarity, biggest first.

    Answers ``{since, until, messages, capped, groups, refused_groups, articles, intents, new_articles}``:
    ``groups`` the misses, ``refused_groups`` (grouped apart, same shape, ``refused`` true) the messages the
    bot refused as outside what it covers; each group ``{count, examples, sources, guesses, suggested,
    refused, messages: [{id, conversation_id, text, created_at, sources, guesses, rejected, suggested}]}``.
    """
    await require_lead(request, api=True)
    since, until = report_range(request)
    return web.json_response(await asyncio.to_thread(_misses_payload, request, since, until))


async def decide_api(request: web.Request) -> web.Response:
    """Decide one missed message: add it to an article or an intent, mark "needs a new article", or dismiss."""
    staff = await require_lead(request, api=True)
    await check_csrf(request, request.headers.get(CSRF_HEADER))
    message_id = path_id(request, "message_id", MessageNotFoundError)
    body = await json_body(request, "{action, target, text}")
    text_field = body.get("text") if isinstance(body, dict) else None
    if not (text_field is None or isinstance(text_field, str)):
        raise RequestError("send JSON: {action, target, text}, each a string")
    action, target = _decision_request(body, many=False)
    text = text_field or ""
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


MAX_GROUP_DECISION = 1000


def _decision_request(body: Any, many: bool) -> Tuple[InboxAction, str]:
    """The action and target of a decision's JSON body; RequestError for a malformed one."""
    fields = [body.get(name) if isinstance(body, dict) else None for name in ("action", "target")]
    if not all(value is None or isinstance(value, str) for value in fields):
        shape = "{action, target, messages: [{id, text}]}" if many else "{action, target, text}"
        raise RequestError(f"send JSON: {shape}, action and target strings")
    action_name, target = (value or "" for value in fields)
    try:
        action = InboxAction(action_name)
    except ValueError:
        raise RequestError("action must be article, intent, new_article or dismiss") from None
    if action in (InboxAction.ARTICLE, InboxAction.INTENT) and not target:
        raise RequestError(f"choose the {action.value} to add the phrasing to")
    return action, target


async def decide_group_api(request: web.Request) -> web.Response:
    """Decide several missed messages alike (a group, less the lead's exceptions), each on its own.

    Body: ``{action, target, messages: [{id, text}]}`` (``text``: the words to
    keep, edited or not). Answers ``{results: [{message_id, ok, summary |
    error}], decided, refused, new_articles?}``: a message whose edit is refused
    (a duplicate, say) or that was decided meanwhile is reported and left as it
    was; the others are decided.
    """
    staff = await require_lead(request, api=True)
    await check_csrf(request, request.headers.get(CSRF_HEADER))
    body = await json_body(request, "{action, target, messages: [{id, text}]}")
    action, target = _decision_request(body, many=True)
    items = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        raise RequestError("send the messages to decide: messages: [{id, text}, ...]")
    if len(items) > MAX_GROUP_DECISION:
        raise RequestError(f"at most {MAX_GROUP_DECISION} messages at once")
    chosen: List[Tuple[int, str]] = []
    for item in items:
        if not (isinstance(item, dict) and isinstance(item.get("id"), int) and not isinstance(item.get("id"), bool)
                and isinstance(item.get("text"), str)):
            raise RequestError("each message is {id: number, text: string}")
        chosen.append((item["id"], item["text"]))
    if len({message_id for message_id, _ in chosen}) != len(chosen):
        raise RequestError("a message is listed twice")
    settings: Settings = request.app[SETTINGS]
    store = request.app[STORE]
    workspace = Workspace(settings.kb_dir, settings.nlu_dir, settings.project_root)
    now = request.app[CLOCK]()

    def run() -> List[Dict[str, Any]]:
        results: List[Dict[str, Any]] = []
        for message_id, text in chosen:
            try:
                _decision, summary = decide(store, workspace, message_id, action, target, text, staff["email"], now)
            except (TrainingDataEditError, MessageNotFoundError, AlreadyDecidedError, ValueError) as error:
                results.append({"message_id": message_id, "ok": False, "error": request_message(request, str(error))})
            else:
                results.append({"message_id": message_id, "ok": True, "summary": summary})
        return results

    results = await asyncio.to_thread(run)
    decided = [r["message_id"] for r in results if r["ok"]]
    for message_id in decided:  # the audit trail reads as if each had been decided on its own
        await audit_staff_action(request, staff, "decide_miss", f"message {message_id}", decision=action.value,
                                 article_or_intent=target or None, group=True)
    payload: Dict[str, Any] = {"results": results, "decided": len(decided), "refused": len(results) - len(decided)}
    if action is InboxAction.NEW_ARTICLE:
        payload["new_articles"] = [decision_view(d) for d in await asyncio.to_thread(new_article_requests, store)]
    return web.json_response(payload)


def conversation_view(messages: List[MessageRecord], names: Dict[str, str]) -> List[Dict[str, Any]]:
    """A conversation as the lead reads it: who (agents by name), what, when, and what the bot answered."""
    view = []
    for message in messages:
        deskmate = ((message.payload or {}).get("metadata") or {}).get("deskmate") or {}
        view.append({
            "id": message.id, "sender": message.sender,
            "author": names.get(message.author or "", message.author) if message.author else None,
            "text": message.text, "created_at": message.created_at.isoformat(),
            "kind": deskmate.get("type") if isinstance(deskmate, dict) else None,
            "article_id": deskmate.get("article_id") if isinstance(deskmate, dict) else None,
        })
    return view


async def conversation_api(request: web.Request) -> web.Response:
    """The whole conversation behind a missed (or any) visitor message: ``/lead/api/messages/{id}/conversation``.

    Answers ``{conversation_id, message_id, messages: [{id, sender, author,
    text, created_at, kind, article_id}], tickets: [{id, status, reason}]}``,
    oldest first (at most 1,000 messages); 404 for an unknown message.
    """
    await require_lead(request, api=True)
    message_id = path_id(request, "message_id", MessageNotFoundError)
    store = request.app[STORE]

    def read() -> Dict[str, Any]:
        message = get_message(store, message_id)
        if message is None:
            raise MessageNotFoundError(f"there is no message {message_id}")
        messages = conversation_messages(store, message.conversation_id)
        names = staff_names(store, {m.author for m in messages if m.author})
        tickets = [
            {"id": t.id, "status": t.status, "reason": t.reason}
            for t in tickets_for_conversation(store, message.conversation_id)
        ]
        return {"conversation_id": message.conversation_id, "message_id": message_id,
                "messages": conversation_view(messages, names), "tickets": tickets}

    return web.json_response(await asyncio.to_thread(read))


def add_inbox_routes(app: web.Application) -> None:
    """Register the inbox API."""
    app.router.add_get("/lead/api/misses", misses_api)
    app.router.add_post("/lead/api/misses/decide", decide_group_api)
    app.router.add_post("/lead/api/misses/{message_id}", decide_api)
    app.router.add_get("/lead/api/messages/{message_id}/conversation", conversation_api)
