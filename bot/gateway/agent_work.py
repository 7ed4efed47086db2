"""The agent inbox's working-day API (issue 14): read marks, reopening resolved tickets, internal notes
and saved replies (leads manage them, every agent reads them).

Routes are registered by ``bot.gateway.agent_api.add_agent_routes``; every call needs a signed-in staff
member, and every change a CSRF token (header X-CSRF-Token).
"""
from __future__ import annotations

import asyncio
from typing import Any, Dict

from aiohttp import web

from bot.dialogue.input_check import clean_text
from bot.gateway.agent_api import note_view, ticket_view
from bot.gateway.errors import RequestError, json_body, path_id
from bot.gateway.keys import CLOCK, DESK, STORE
from bot.gateway.staff_auth import CSRF_HEADER, audit_staff_action, check_csrf, require_lead, require_staff
from bot.handoff import texts
from bot.handoff.lifecycle import QUEUE_CHANGED, TICKET_MESSAGE
from bot.protocol import MessageKind, ResolvedPayload, Sender, stored_payload, widget_message
from bot.store.agent_queue import mark_ticket_seen, merge_tickets, reopen_ticket
from bot.store.database import Store
from bot.store.messages import NewMessage
from bot.store.notes import add_note
from bot.store.saved_replies import (
    DuplicateTitleError,
    SavedReplyNotFoundError,
    SavedReplyRecord,
    delete_saved_reply,
    save_reply,
    saved_replies,
)
from bot.store.tickets import TicketNotFoundError

MAX_MESSAGE_ID = 2**63 - 1


def _ticket_id(request: web.Request) -> int:
    return path_id(request, "ticket_id", TicketNotFoundError)


async def _staff_change(request: web.Request) -> Dict[str, Any]:
    staff = await require_staff(request, api=True)
    await check_csrf(request, request.headers.get(CSRF_HEADER))
    return staff


async def seen_api(request: web.Request) -> web.Response:
    """``{"up_to": <message id>}``: the agent's inbox shows the ticket open with its conversation up to that
    message (sent while the page is visible). Answers ``{"seen": <the mark kept>}``; 400 for a body of
    another shape, 404 for an unknown ticket."""
    staff = await _staff_change(request)
    ticket_id = _ticket_id(request)
    body = await json_body(request, '{"up_to": <message id>}')
    up_to = body.get("up_to") if isinstance(body, dict) else None
    if not isinstance(up_to, int) or isinstance(up_to, bool) or not 0 <= up_to <= MAX_MESSAGE_ID:
        raise RequestError('send JSON: {"up_to": <message id>} (a whole number)')
    store: Store = request.app[STORE]
    seen = await asyncio.to_thread(mark_ticket_seen, store, staff["email"], ticket_id, up_to, request.app[CLOCK]())
    return web.json_response({"seen": seen})


async def reopen_api(request: web.Request) -> web.Response:
    """Open a resolved ticket again, assigned to the agent; the visitor is told (by the agent's display
    name) and the conversation is the team's again. 409 when it is not resolved or its conversation has
    another open ticket."""
    staff = await _staff_change(request)
    ticket_id = _ticket_id(request)
    said = widget_message(texts.reopened(staff["name"], f"#{ticket_id}"),
                          {"type": MessageKind.AGENT_JOINED.value, "agent_name": staff["name"], "ticket": ticket_id})
    notice = NewMessage(Sender.SYSTEM.value, said["text"], stored_payload(said))
    now = request.app[CLOCK]()
    change = await asyncio.to_thread(reopen_ticket, request.app[STORE], ticket_id, staff["email"], now, notice)
    delivery = request.app[DESK].delivery
    await delivery.send_to_visitor(change.ticket.conversation_id, said)
    await delivery.notify_agents(QUEUE_CHANGED, {"ticket": ticket_id})
    await audit_staff_action(request, staff, "reopen", change.ticket.number)
    return web.json_response({"ticket": ticket_view(change.ticket, now)})


async def note_api(request: web.Request) -> web.Response:
    """``{"text": "..."}``: an internal note on the ticket (open or resolved), shown to staff only and
    marked as such; every open inbox re-reads the ticket. Answers 201 ``{"note": {...}}``."""
    staff = await _staff_change(request)
    ticket_id = _ticket_id(request)
    body = await json_body(request, '{"text": "..."}')
    text = body.get("text") if isinstance(body, dict) else None
    if not isinstance(text, str):
        raise RequestError('send JSON: {"text": "..."} (text as a string)')
    try:
        note = await asyncio.to_thread(add_note, request.app[STORE], ticket_id, staff["email"], clean_text(text),
                                       request.app[CLOCK]())
    except ValueError as error:
        raise RequestError(str(error)) from None
    await request.app[DESK].delivery.notify_agents(TICKET_MESSAGE, {"ticket": ticket_id})
    await audit_staff_action(request, staff, "note", f"#{ticket_id}")
    return web.json_response({"note": note_view(note, {staff["email"]: staff["name"]})}, status=201)


async def merge_api(request: web.Request) -> web.Response:
    """``{"from": <ticket number>, "confirm": true|false}``: merge the same customer's open ticket into this
    one (see ``merge_tickets``); that conversation's visitor is told, every inbox re-reads the queue. 409
    when either is resolved, they are not the same customer's, or ticket ``from`` is claimed by another
    agent and ``confirm`` is not true (merging closes it under them)."""
    staff = await _staff_change(request)
    into_id = _ticket_id(request)
    body = await json_body(request, '{"from": <ticket number>}')
    from_id = body.get("from") if isinstance(body, dict) else None
    if not isinstance(from_id, int) or isinstance(from_id, bool) or not 0 < from_id <= MAX_MESSAGE_ID:
        raise RequestError('send JSON: {"from": <ticket number>} (a whole number)')
    confirm = body.get("confirm", False)
    if not isinstance(confirm, bool):
        raise RequestError('"confirm" is true or false')
    said = widget_message(texts.merged(f"#{from_id}", f"#{into_id}"),
                          ResolvedPayload(type="resolved", how="merged", ticket=from_id))
    notice = NewMessage(Sender.SYSTEM.value, said["text"], stored_payload(said))
    now = request.app[CLOCK]()
    merge = await asyncio.to_thread(merge_tickets, request.app[STORE], into_id, from_id, staff["email"], now, notice,
                                  confirm)
    delivery = request.app[DESK].delivery
    await delivery.send_to_visitor(merge.merged.conversation_id, said)
    await delivery.notify_agents(QUEUE_CHANGED, {"ticket": into_id})
    await delivery.notify_agents(QUEUE_CHANGED, {"ticket": from_id})
    await audit_staff_action(request, staff, "merge", f"#{from_id}", into=into_id, confirmed=confirm)
    return web.json_response({"ticket": ticket_view(merge.into, now), "merged": ticket_view(merge.merged, now)})


def _reply_view(reply: SavedReplyRecord) -> Dict[str, Any]:
    return {"id": reply.id, "title": reply.title, "text": reply.text, "updated_by": reply.updated_by,
            "updated_at": reply.updated_at.isoformat()}


async def saved_replies_api(request: web.Request) -> web.Response:
    """Every saved reply by title: ``{"saved_replies": [{"id", "title", "text", "updated_by", "updated_at"}]}``."""
    await require_staff(request, api=True)
    replies = await asyncio.to_thread(saved_replies, request.app[STORE])
    return web.json_response({"saved_replies": [_reply_view(r) for r in replies]})


def _not_found(error: Exception) -> web.HTTPNotFound:
    return web.HTTPNotFound(text=str(error))


def _reply_id(request: web.Request) -> int:
    try:
        return path_id(request, "reply_id", SavedReplyNotFoundError)
    except SavedReplyNotFoundError as error:  # a StoreError: answered 404 here, not as the store being down
        raise _not_found(error) from None


async def save_reply_api(request: web.Request) -> web.Response:
    """Leads only: ``{"title": "...", "text": "..."}`` creates a saved reply (POST, 201) or changes one (PUT
    .../saved-replies/N). 400 empty or too long (title 100, text 4000 characters), 403 not a lead,
    404 no such reply, 409 the title is taken."""
    staff = await require_lead(request, api=True)
    await check_csrf(request, request.headers.get(CSRF_HEADER))
    reply_id = _reply_id(request) if "reply_id" in request.match_info else 0
    body = await json_body(request, '{"title": "...", "text": "..."}')
    title = body.get("title") if isinstance(body, dict) else None
    text = body.get("text") if isinstance(body, dict) else None
    if not isinstance(title, str) or not isinstance(text, str):
        raise RequestError('send JSON: {"title": "...", "text": "..."} (both strings)')
    try:
        reply = await asyncio.to_thread(save_reply, request.app[STORE], clean_text(title), clean_text(text),
                                        staff["email"], request.app[CLOCK](), reply_id)
    except ValueError as error:
        raise RequestError(str(error)) from None
    except SavedReplyNotFoundError as error:
        raise _not_found(error) from None
    except DuplicateTitleError as error:
        raise web.HTTPConflict(text=str(error)) from None
    await audit_staff_action(request, staff, "saved_reply", reply.title, change="edit" if reply_id else "add")
    return web.json_response({"saved_reply": _reply_view(reply)}, status=200 if reply_id else 201)


async def delete_reply_api(request: web.Request) -> web.Response:
    """Leads only: delete saved reply N (204); 404 when there is none."""
    staff = await require_lead(request, api=True)
    await check_csrf(request, request.headers.get(CSRF_HEADER))
    reply_id = _reply_id(request)
    try:
        await asyncio.to_thread(delete_saved_reply, request.app[STORE], reply_id)
    except SavedReplyNotFoundError as error:
        raise _not_found(error) from None
    await audit_staff_action(request, staff, "saved_reply", str(reply_id), change="delete")
    return web.Response(status=204)


def add_agent_work_routes(app: web.Application) -> None:
    """Register this module's routes (called by ``add_agent_routes``)."""
    app.router.add_post("/agent/api/tickets/{ticket_id}/seen", seen_api)
    app.router.add_post("/agent/api/tickets/{ticket_id}/reopen", reopen_api)
    app.router.add_post("/agent/api/tickets/{ticket_id}/notes", note_api)
    app.router.add_post("/agent/api/tickets/{ticket_id}/merge", merge_api)
    app.router.add_get("/agent/api/saved-replies", saved_replies_api)
    app.router.add_post("/agent/api/saved-replies", save_reply_api)
    app.router.add_put("/agent/api/saved-replies/{reply_id}", save_reply_api)
    app.router.add_delete("/agent/api/saved-replies/{reply_id}", delete_reply_api)
