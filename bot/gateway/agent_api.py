"""The agent inbox: the page, its JSON API and its live socket (signed-in staff only)."""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any, Dict, Optional

import aiohttp_jinja2
import socketio
from aiohttp import web
from aiohttp_session import get_session

from bot.gateway.conversations import Agent, NotYourTicketError
from bot.gateway.hub import AGENT_NAMESPACE, AGENTS_ROOM
from bot.gateway.keys import ANSWERER, CONVERSATIONS, SETTINGS
from bot.gateway.staff_auth import CSRF_HEADER, STAFF_KEY, check_csrf, csrf_token, require_staff
from bot.store.database import StoreError
from bot.store.tickets import TicketRecord, TicketStateError, get_ticket, queue, ticket_counts, tickets_for_customer

logger = logging.getLogger(__name__)
MAX_REPLY_CHARS = 4000


def ticket_view(ticket: TicketRecord, now: datetime, first_message: str = "") -> Dict[str, Any]:
    """A ticket as the inbox shows it."""
    customer = (ticket.handover or {}).get("customer") or {}
    return {
        "id": ticket.id,
        "number": ticket.number,
        "conversation_id": ticket.conversation_id,
        "priority": ticket.priority,
        "status": ticket.status,
        "plan": ticket.plan,
        "reason": ticket.reason,
        "assignee": ticket.assignee,
        "customer_name": customer.get("name"),
        "created_at": ticket.created_at.isoformat(),
        "sla_due_at": ticket.sla_due_at.isoformat(),
        "resolved_at": ticket.resolved_at.isoformat() if ticket.resolved_at else None,
        "overdue": ticket.is_open and ticket.first_agent_reply_at is None and ticket.sla_due_at < now,
        "first_agent_reply_at": ticket.first_agent_reply_at.isoformat() if ticket.first_agent_reply_at else None,
        "first_message": first_message,
    }


def first_visitor_text(ticket: TicketRecord) -> str:
    """The visitor's first words, for the queue row."""
    for entry in (ticket.handover or {}).get("transcript") or []:
        if entry.get("from") == "visitor":
            return str(entry.get("text") or "")[:140]
    return ""


async def inbox_page(request: web.Request) -> web.Response:
    """The inbox (an HTML shell; its script reads the API below)."""
    staff = await require_staff(request, api=False)
    return aiohttp_jinja2.render_template(
        "agent_inbox.html", request, {"csrf_token": await csrf_token(request), "staff": staff}
    )


async def queue_api(request: web.Request) -> web.Response:
    """Open and assigned tickets by priority then due time, and counts per state."""
    await require_staff(request, api=True)
    url = request.app[SETTINGS].resolved_database_url()
    now = request.app[CONVERSATIONS].handoff.now()
    tickets = await asyncio.to_thread(queue, url, now)
    counts = await asyncio.to_thread(ticket_counts, url)
    return web.json_response(
        {"now": now.isoformat(), "counts": counts, "tickets": [ticket_view(t, now, first_visitor_text(t)) for t in tickets]}
    )


def _ticket_id(request: web.Request) -> int:
    try:
        return int(request.match_info["ticket_id"])
    except ValueError:
        raise web.HTTPNotFound(text='{"error": "no such ticket"}', content_type="application/json") from None


async def ticket_api(request: web.Request) -> web.Response:
    """One ticket: the handover, every message, the customer's earlier tickets."""
    await require_staff(request, api=True)
    url = request.app[SETTINGS].resolved_database_url()
    now = request.app[CONVERSATIONS].handoff.now()
    ticket = await asyncio.to_thread(get_ticket, url, _ticket_id(request))
    if ticket is None:
        return web.json_response({"error": "no such ticket"}, status=404)
    messages = await request.app[CONVERSATIONS].history(ticket.conversation_id)
    earlier = []
    if ticket.customer_id is not None:
        others = await asyncio.to_thread(tickets_for_customer, url, ticket.customer_id, 11)
        earlier = [
            {"id": t.id, "number": t.number, "status": t.status, "reason": t.reason, "created_at": t.created_at.isoformat()}
            for t in others if t.id != ticket.id
        ][:10]
    return web.json_response(
        {"ticket": ticket_view(ticket, now, first_visitor_text(ticket)), "handover": ticket.handover,
         "messages": messages, "earlier_tickets": earlier}
    )


async def _act(request: web.Request, action: str) -> web.Response:
    staff = await require_staff(request, api=True)
    await check_csrf(request, request.headers.get(CSRF_HEADER))
    agent = Agent(email=staff["email"], name=staff["name"])
    service = request.app[CONVERSATIONS]
    ticket_id = _ticket_id(request)
    try:
        if action == "claim":
            ticket = await service.claim(ticket_id, agent)
        elif action == "reply":
            body = await request.json() if request.can_read_body else {}
            text = str((body or {}).get("text") or "").strip()
            if not text or len(text) > MAX_REPLY_CHARS:
                return web.json_response({"error": f"a reply is 1 to {MAX_REPLY_CHARS} characters"}, status=400)
            ticket = await service.agent_reply(ticket_id, agent, text)
        else:
            ticket = await service.close(ticket_id, agent, hand_back=action == "handback")
    except (NotYourTicketError, LookupError) as error:
        return web.json_response({"error": str(error)}, status=404)
    except TicketStateError as error:
        return web.json_response({"error": str(error)}, status=409)
    except StoreError:
        logger.exception("agent action %s on ticket %s failed", action, ticket_id)
        return web.json_response({"error": "the database is unavailable; nothing was changed"}, status=503)
    return web.json_response({"ticket": ticket_view(ticket, service.handoff.now(), first_visitor_text(ticket))})


async def claim_api(request: web.Request) -> web.Response:
    return await _act(request, "claim")


async def reply_api(request: web.Request) -> web.Response:
    return await _act(request, "reply")


async def resolve_api(request: web.Request) -> web.Response:
    return await _act(request, "resolve")


async def handback_api(request: web.Request) -> web.Response:
    return await _act(request, "handback")


async def articles_api(request: web.Request) -> web.Response:
    """Every article (id, title, answer), for inserting an answer into a reply."""
    await require_staff(request, api=True)
    articles = request.app[ANSWERER].kb.all()
    return web.json_response({"articles": [{"id": a.id, "title": a.title, "body": a.body} for a in articles]})


def register_agent_socket(sio: socketio.AsyncServer) -> None:
    """Live updates for signed-in staff only: the socket's session cookie is checked on connect."""

    @sio.on("connect", namespace=AGENT_NAMESPACE)
    async def connect(sid: str, environ: Dict[str, Any], auth: Optional[Dict[str, Any]] = None) -> bool:
        request = environ.get("aiohttp.request")
        if request is None:
            return False
        staff = (await get_session(request)).get(STAFF_KEY)
        if not isinstance(staff, dict):
            return False
        await sio.enter_room(sid, AGENTS_ROOM, namespace=AGENT_NAMESPACE)
        return True


def add_agent_routes(app: web.Application) -> None:
    """Register the inbox page and its API."""
    app.router.add_get("/agent", inbox_page)
    app.router.add_get("/agent/api/queue", queue_api)
    app.router.add_get("/agent/api/tickets/{ticket_id}", ticket_api)
    app.router.add_post("/agent/api/tickets/{ticket_id}/claim", claim_api)
    app.router.add_post("/agent/api/tickets/{ticket_id}/reply", reply_api)
    app.router.add_post("/agent/api/tickets/{ticket_id}/resolve", resolve_api)
    app.router.add_post("/agent/api/tickets/{ticket_id}/handback", handback_api)
    app.router.add_get("/agent/api/articles", articles_api)
