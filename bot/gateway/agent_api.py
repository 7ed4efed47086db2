"""The agent inbox: the page, its JSON API and its live socket (signed-in staff only)."""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any, AsyncIterator, Awaitable, Callable, Dict, List, Optional, Union

import aiohttp_jinja2
import socketio
from aiohttp import web
from aiohttp_session import get_session

from bot.dialogue.input_check import clean_text
from bot.gateway.clients import origin_allowed
from bot.gateway.errors import RequestError, json_body, path_id
from bot.gateway.hub import AGENT_NAMESPACE, AGENTS_ROOM
from bot.gateway.keys import ANSWERER, CLOCK, DESK, GATEWAY_ID, SETTINGS, SIO, STORE, VISITORS
from bot.gateway.router import staff_view
from bot.gateway.staff_auth import (
    CSRF_HEADER,
    TOKEN_KEY,
    audit_staff_action,
    check_csrf,
    csrf_token,
    require_staff,
    signed_in_staff,
)
from bot.handoff.handover import build_handover
from bot.handoff.lifecycle import UNCHECKED, Agent, Unchecked
from bot.protocol import ClosedHow
from bot.store.database import StoreError
from bot.store.mail import OutgoingMailRecord, ticket_mail
from bot.store.presence import agent_connected, agent_disconnected, gateway_stopped, heartbeat
from bot.store.agent_queue import (
    PEOPLE,
    LatestMessage,
    QueueQuery,
    latest_messages,
    needing_attention,
    other_open_tickets,
    queue_page,
    unread_counts,
    visitor_label,
)
from bot.store.messages import MessageRecord, conversation_messages
from bot.store.notes import NoteRecord, notes_for
from bot.store.sessions import live_sessions
from bot.store.staff import staff_names
from bot.store.tickets import TicketNotFoundError, TicketRecord, get_ticket, ticket_counts, tickets_for_customer

logger = logging.getLogger(__name__)
MAX_REPLY_CHARS = 4000
QUEUE_ROW_CHARS = 140
# The article picker's search: at most this many hits, none below this similarity.
ARTICLE_HITS = 8
ARTICLE_MIN_SCORE = 0.05


def ticket_view(ticket: TicketRecord, now: datetime, latest: Optional[LatestMessage] = None, unread: int = 0) -> Dict[str, Any]:
    """A ticket as the inbox shows it: ``latest_message`` is the conversation's newest visitor or agent
    message ({"id", "from", "author", "text" (at most QUEUE_ROW_CHARS), "at"}, or null); ``unread`` the
    visitor messages the signed-in agent has not had in view; ``customer_label`` a name for anyone
    (the customer's, else a stable "Visitor 4F2A")."""
    customer = (ticket.handover or {}).get("customer") or {}
    name = customer.get("name")
    return {
        "id": ticket.id,
        "number": ticket.number,
        "conversation_id": ticket.conversation_id,
        "priority": ticket.priority,
        "status": ticket.status,
        "plan": ticket.plan,
        "reason": ticket.reason,
        "assignee": ticket.assignee,
        "customer_name": name,
        "customer_label": name or visitor_label(ticket.conversation_id),
        "created_at": ticket.created_at.isoformat(),
        "sla_due_at": ticket.sla_due_at.isoformat(),
        "resolved_at": ticket.resolved_at.isoformat() if ticket.resolved_at else None,
        "overdue": ticket.is_open and ticket.first_agent_reply_at is None and ticket.sla_due_at < now,
        "first_agent_reply_at": ticket.first_agent_reply_at.isoformat() if ticket.first_agent_reply_at else None,
        "latest_message": {
            "id": latest.id, "from": latest.sender, "author": latest.author,
            "text": latest.text[:QUEUE_ROW_CHARS], "at": latest.at.isoformat(),
        } if latest is not None else None,
        "unread": unread,
        # Where the team's replies are e-mailed when the visitor has left (staff only).
        "contact_email": ticket.contact_email,
    }


def note_view(note: NoteRecord, names: Dict[str, str]) -> Dict[str, Any]:
    """An internal note as the inbox shows it: {"id", "author" (e-mail), "author_name", "text", "at"}."""
    return {"id": note.id, "author": note.author, "author_name": names.get(note.author, note.author),
            "text": note.text, "at": note.created_at.isoformat()}


def mail_view(mail: OutgoingMailRecord) -> Dict[str, Any]:
    """One e-mail to the visitor as the inbox shows it: its state, tries, and the relay's last refusal."""
    return {
        "id": mail.id,
        "status": mail.status,
        "attempts": mail.attempts,
        "last_error": mail.last_error if mail.status != "cancelled" else None,
        "next_attempt_at": mail.next_attempt_at.isoformat() if mail.status == "pending" else None,
        "sent_at": mail.sent_at.isoformat() if mail.sent_at else None,
        "to": mail.to_address,
    }


async def inbox_page(request: web.Request) -> web.Response:
    """The inbox (an HTML shell; its script reads the API below)."""
    staff = await require_staff(request, api=False)
    return aiohttp_jinja2.render_template(
        "agent_inbox.html", request, {"csrf_token": await csrf_token(request), "staff": staff}
    )


def _queue_query(request: web.Request) -> QueueQuery:
    """The page asked for in the query string (view, filter, q, page, per_page); RequestError (400)."""
    params = request.query

    def number(name: str, default: int) -> int:
        raw = params.get(name, "")
        if not raw:
            return default
        if not raw.isdigit() or len(raw) > 6:
            raise RequestError(f"{name} must be a whole number, got {raw[:20]!r}")
        return int(raw)

    try:
        return QueueQuery(
            view=params.get("view", "open"), filter=params.get("filter", "all"),
            search=clean_text(params.get("q", "")).strip(), page=number("page", 1),
            per_page=number("per_page", QueueQuery.per_page),
        )
    except ValueError as error:
        raise RequestError(str(error)) from None


async def queue_api(request: web.Request) -> web.Response:
    """One page of the queue (``?view=open|resolved&filter=all|mine|unclaimed|overdue|premium|waiting
    &q=...&page=1&per_page=25``): open and assigned tickets by priority then due time (or resolved ones,
    newest first), each with its latest message and what this agent has not read; counts per state and
    per filter; ``attention``: the agent's and unclaimed tickets with unread visitor messages (for the tab
    title and notifications: [{"id", "number", "unread", "latest_id", "latest_text"}])."""
    staff = await require_staff(request, api=True)
    query = _queue_query(request)
    store, now = request.app[STORE], request.app[CLOCK]()
    page = await asyncio.to_thread(queue_page, store, now, staff["email"], query)
    counts = await asyncio.to_thread(ticket_counts, store)
    attention = await asyncio.to_thread(needing_attention, store, staff["email"])
    return web.json_response({
        "now": now.isoformat(), "counts": counts, "filter_counts": page.filter_counts,
        "view": query.view, "filter": query.filter, "q": query.search,
        "page": page.page, "per_page": page.per_page, "pages": page.pages, "total": page.total,
        "tickets": [ticket_view(row.ticket, now, row.latest, row.unread) for row in page.rows],
        "attention": [
            {"id": a.ticket_id, "number": f"#{a.ticket_id}", "unread": a.unread, "latest_id": a.latest_id,
             "latest_text": a.latest_text[:QUEUE_ROW_CHARS]}
            for a in attention
        ],
    })


def _ticket_id(request: web.Request) -> int:
    return path_id(request, "ticket_id", TicketNotFoundError)


async def ticket_api(request: web.Request) -> web.Response:
    """One ticket: the handover (built from the stored conversation), every message, the customer's earlier
    tickets, their other open tickets (each with what this agent has not read of it: ``unread``)."""
    staff = await require_staff(request, api=True)
    store, now = request.app[STORE], request.app[CLOCK]()
    ticket = await asyncio.to_thread(get_ticket, store, _ticket_id(request))
    if ticket is None:
        raise TicketNotFoundError("no such ticket")
    messages = await asyncio.to_thread(conversation_messages, store, ticket.conversation_id)
    earlier = []
    if ticket.customer_id is not None:
        others = await asyncio.to_thread(tickets_for_customer, store, ticket.customer_id, 11)
        earlier = [
            {"id": t.id, "number": t.number, "status": t.status, "reason": t.reason, "created_at": t.created_at.isoformat()}
            for t in others if t.id != ticket.id
        ][:10]
    mail = await asyncio.to_thread(ticket_mail, store, ticket.id)
    notes = await asyncio.to_thread(notes_for, store, ticket.id)
    names = await asyncio.to_thread(staff_names, store, {n.author for n in notes})
    others = await asyncio.to_thread(other_open_tickets, store, ticket)
    latest = await asyncio.to_thread(latest_messages, store, [t.conversation_id for t in others])
    unread = await asyncio.to_thread(unread_counts, store, staff["email"], [t.id for t in others])
    online = await request.app[VISITORS].online(ticket.conversation_id)
    return web.json_response({
        # The same customer's other open tickets (to merge), and whether the visitor's widget is connected
        # now (true / false / null: unknown, with several gateways).
        "other_open_tickets": [ticket_view(t, now, latest.get(t.conversation_id), unread.get(t.id, 0)) for t in others], "visitor_online": online,
        # Internal notes (staff only; never messages, so never shown or sent to the visitor).
        "notes": [note_view(n, names) for n in notes],
        "ticket": ticket_view(ticket, now, _latest_of(messages)), "handover": build_handover(ticket, messages),
        "messages": [staff_view(m) for m in messages], "earlier_tickets": earlier,
        "emails": [mail_view(m) for m in mail if m.kind == "conversation"],
    })


def _latest_of(messages: List[MessageRecord]) -> Optional[LatestMessage]:
    person = next((m for m in reversed(messages) if m.sender in PEOPLE), None)
    return LatestMessage(person.id, person.sender, person.author, person.text, person.created_at) if person else None


async def _answer(request: web.Request, ticket: TicketRecord) -> web.Response:
    messages = await asyncio.to_thread(conversation_messages, request.app[STORE], ticket.conversation_id)
    return web.json_response({"ticket": ticket_view(ticket, request.app[CLOCK](), _latest_of(messages))})


async def _act(request: web.Request, action: str, run: Callable[[Agent, int], Awaitable[TicketRecord]]) -> web.Response:
    """A signed-in agent's action on a ticket (CSRF checked); recorded in the audit trail once it happened."""
    staff = await require_staff(request, api=True)
    await check_csrf(request, request.headers.get(CSRF_HEADER))
    ticket_id = _ticket_id(request)
    ticket = await run(Agent(email=staff["email"], name=staff["name"]), ticket_id)
    await audit_staff_action(request, staff, action, ticket.number)
    return await _answer(request, ticket)


async def claim_api(request: web.Request) -> web.Response:
    return await _act(request, "claim", lambda agent, ticket_id: request.app[DESK].claim(ticket_id, agent))


async def reply_api(request: web.Request) -> web.Response:
    body = await json_body(request, '{"text": "...", "take_over": false}')
    text = body.get("text") if isinstance(body, dict) else None
    take_over = body.get("take_over", False) if isinstance(body, dict) else False
    if not isinstance(take_over, bool):
        raise RequestError('"take_over" is true or false')
    if not isinstance(text, str):
        raise RequestError('send JSON: {"text": "..."} (text as a string)')
    text = clean_text(text).strip()
    if not text or len(text) > MAX_REPLY_CHARS:
        raise RequestError(f"a reply is 1 to {MAX_REPLY_CHARS} characters")
    return await _act(request, "reply", lambda agent, ticket_id: request.app[DESK].reply(ticket_id, agent, text, take_over))


async def _seen_assignee(request: web.Request) -> Union[Optional[str], Unchecked]:
    """``{"assignee": "<e-mail>"|null}``, the assignee the agent saw when deciding; UNCHECKED without a body."""
    body = await json_body(request, '{"assignee": "<e-mail>" or null}')
    if not isinstance(body, dict) or "assignee" not in body:
        return UNCHECKED
    seen = body["assignee"]
    if seen is not None and not isinstance(seen, str):
        raise RequestError('"assignee" is an e-mail address or null')
    return seen


async def resolve_api(request: web.Request) -> web.Response:
    """Resolve; with ``{"assignee": ...}`` only while the ticket is still that one's or the agent's (409)."""
    seen = await _seen_assignee(request)
    return await _act(request, "resolve", lambda agent, ticket_id: request.app[DESK].close(ticket_id, agent, ClosedHow.RESOLVED, seen))


async def handback_api(request: web.Request) -> web.Response:
    """Hand back to the bot; ``{"assignee": ...}`` as for resolve."""
    seen = await _seen_assignee(request)
    return await _act(request, "hand_back", lambda agent, ticket_id: request.app[DESK].close(ticket_id, agent, ClosedHow.HANDED_BACK, seen))


async def articles_api(request: web.Request) -> web.Response:
    """Every article (id, title, answer), for inserting an answer into a reply; with ``?q=words``, the
    closest articles to the words by the bot's own KB search (their answers and phrasings, not only
    titles), best first, each with its ``score`` (0..1), at most ARTICLE_HITS."""
    await require_staff(request, api=True)
    answerer = request.app[ANSWERER]
    query = clean_text(request.query.get("q", "")).strip()[:MAX_REPLY_CHARS]
    if not query:
        articles = answerer.kb.all()
        return web.json_response({"articles": [{"id": a.id, "title": a.title, "body": a.body} for a in articles]})
    hits = await asyncio.to_thread(answerer.search, query, ARTICLE_HITS, ARTICLE_MIN_SCORE)
    return web.json_response({"q": query, "articles": [
        {"id": h.article.id, "title": h.article.title, "body": h.article.body, "score": round(h.score, 3)} for h in hits
    ]})


SOCKET_TOKEN_KEY = "token"
SOCKET_EMAIL_KEY = "email"
# How often each gateway re-checks its staff sockets' sessions (a disabled agent is cut off within this).
SOCKET_CHECK_SECONDS = 2.0


def register_agent_socket(sio: socketio.AsyncServer, app: web.Application) -> None:
    """Live updates for signed-in staff only: the session is checked on connect, and again every few seconds.

    Each open socket makes its staff member present (bot/store/presence.py) from connect to disconnect,
    refreshed by ``agent_presence``: the promises made to visitors count who is signed in.
    """

    @sio.on("connect", namespace=AGENT_NAMESPACE)
    async def connect(sid: str, environ: Dict[str, Any], auth: Optional[Dict[str, Any]] = None) -> bool:
        request = environ.get("aiohttp.request")
        if request is None or not origin_allowed(environ.get("HTTP_ORIGIN"), environ):
            return False  # the staff socket: the gateway's own pages only
        staff = await signed_in_staff(request)
        token = (await get_session(request)).get(TOKEN_KEY)
        if staff is None or staff["needs_second_factor"] or not isinstance(token, str):
            return False
        await sio.save_session(sid, {SOCKET_TOKEN_KEY: token, SOCKET_EMAIL_KEY: staff["email"]}, namespace=AGENT_NAMESPACE)
        await sio.enter_room(sid, AGENTS_ROOM, namespace=AGENT_NAMESPACE)
        try:
            await asyncio.to_thread(agent_connected, app[STORE], app[GATEWAY_ID], sid, staff["email"], app[CLOCK](),
                                    _presence_ttl(app))
        except StoreError:
            logger.exception("agent socket: presence not recorded (the next heartbeat tries again)")
        return True

    @sio.on("disconnect", namespace=AGENT_NAMESPACE)
    async def disconnect(sid: str, reason: Optional[str] = None) -> None:
        try:
            await asyncio.to_thread(agent_disconnected, app[STORE], app[GATEWAY_ID], sid)
        except (StoreError, KeyError):
            logger.exception("agent socket: presence not cleared (it expires by itself)")


async def _cut_ended_sessions(app: web.Application) -> None:
    """Disconnect this process's staff sockets whose session ended (sign-out, disabled, role or password change)."""
    sio, settings = app[SIO], app[SETTINGS]
    sockets: Dict[str, str] = {}
    for sid, _ in list(sio.manager.get_participants(AGENT_NAMESPACE, AGENTS_ROOM)):
        token = (await sio.get_session(sid, namespace=AGENT_NAMESPACE)).get(SOCKET_TOKEN_KEY)
        if isinstance(token, str):
            sockets[sid] = token
    if not sockets:
        return
    idle, absolute = timedelta(minutes=settings.staff_idle_minutes), timedelta(hours=settings.staff_session_hours)
    live = await asyncio.to_thread(live_sessions, app[STORE], set(sockets.values()), app[CLOCK](), idle, absolute)
    for sid, token in sockets.items():
        if token not in live:
            logger.info("agent socket %s disconnected: its session ended", sid)
            await sio.disconnect(sid, namespace=AGENT_NAMESPACE)


async def staff_socket_watch(app: web.Application) -> AsyncIterator[None]:
    """A background task (cleanup_ctx) cutting off staff sockets whose session ended, every few seconds."""

    async def watch() -> None:
        while True:
            await asyncio.sleep(SOCKET_CHECK_SECONDS)
            try:
                await _cut_ended_sessions(app)
            except Exception:  # noqa: BLE001 (the next round tries again; a store outage must not kill the task)
                logger.exception("agent sockets: the session check failed")

    task = asyncio.create_task(watch())
    yield
    task.cancel()


def _presence_ttl(app: web.Application) -> timedelta:
    return timedelta(seconds=app[SETTINGS].presence_ttl_seconds)


async def _refresh_presence(app: web.Application, had_sockets: bool) -> bool:
    """Record this gateway's open inbox sockets as present (and forget the ones that closed); whether it
    has any. A gateway that had none and has none writes nothing."""
    sio = app[SIO]
    sockets: Dict[str, str] = {}
    for sid, _ in list(sio.manager.get_participants(AGENT_NAMESPACE, AGENTS_ROOM)):
        email = (await sio.get_session(sid, namespace=AGENT_NAMESPACE)).get(SOCKET_EMAIL_KEY)
        if isinstance(email, str):
            sockets[sid] = email
    if sockets or had_sockets:
        await asyncio.to_thread(heartbeat, app[STORE], app[GATEWAY_ID], sockets, app[CLOCK](), _presence_ttl(app))
    return bool(sockets)


async def agent_presence(app: web.Application) -> AsyncIterator[None]:
    """A background task (cleanup_ctx) keeping this gateway's agents present in the store every
    ``presence_heartbeat_seconds``; at shutdown its agents stop counting at once."""

    async def beat() -> None:
        had_sockets = True  # the first beat always writes (and clears what a crashed run left)
        while True:
            await asyncio.sleep(app[SETTINGS].presence_heartbeat_seconds)
            try:
                had_sockets = await _refresh_presence(app, had_sockets)
            except Exception:  # noqa: BLE001 (the next beat tries again; presence expires meanwhile)
                logger.exception("agent sockets: the presence heartbeat failed")

    task = asyncio.create_task(beat())
    yield
    task.cancel()
    try:
        await asyncio.to_thread(gateway_stopped, app[STORE], app[GATEWAY_ID])
    except StoreError:
        logger.exception("agent sockets: presence not cleared at shutdown (it expires by itself)")


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
    from bot.gateway.agent_work import add_agent_work_routes  # it uses ticket_view: imported here, not above

    add_agent_work_routes(app)  # issue 14: read marks, reopening, notes, saved replies (bot/gateway/agent_work.py)
