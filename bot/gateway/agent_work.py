"""The agent inbox's working-day API (issue 14): read marks and reopening resolved tickets.

Routes are registered by ``bot.gateway.agent_api.add_agent_routes``; every call needs a signed-in staff
member, and every change a CSRF token (header X-CSRF-Token).
"""
from __future__ import annotations

import asyncio
from typing import Any, Dict

from aiohttp import web

from bot.gateway.agent_api import ticket_view
from bot.gateway.errors import RequestError, json_body, path_id
from bot.gateway.keys import CLOCK, DESK, STORE
from bot.gateway.staff_auth import CSRF_HEADER, audit_staff_action, check_csrf, require_staff
from bot.handoff import texts
from bot.handoff.lifecycle import QUEUE_CHANGED
from bot.protocol import MessageKind, Sender, stored_payload, widget_message
from bot.store.agent_queue import mark_ticket_seen, reopen_ticket
from bot.store.database import Store
from bot.store.messages import NewMessage
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


def add_agent_work_routes(app: web.Application) -> None:
    """Register this module's routes (called by ``add_agent_routes``)."""
    app.router.add_post("/agent/api/tickets/{ticket_id}/seen", seen_api)
    app.router.add_post("/agent/api/tickets/{ticket_id}/reopen", reopen_api)
