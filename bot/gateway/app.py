"""The gateway application: widget, demo page, JSON API, agent inbox, lead console, socket.io, on one aiohttp server.

Built in the aiohttp-demos shape: ``make_app`` wires routes and the socket.io
server; the services (store, Rasa client, handoff, router) are built at
start-up in ``cleanup_ctx`` and kept under ``web.AppKey``s (bot/gateway/keys.py);
one middleware maps domain errors to ``{"error": ...}`` responses
(bot/gateway/errors.py); the clock is injected once (``CLOCK``).
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Coroutine, Optional

import aiohttp_jinja2
import jinja2
import socketio
from aiohttp import web
from aiohttp_session import setup as setup_sessions
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from engineio.payload import Payload

from bot.clock import Clock, clock_for
from bot.dialogue.answering import Answerer
from bot.gateway.agent_api import add_agent_routes, agent_presence, register_agent_socket, staff_socket_watch
from bot.gateway.api import add_api_routes
from bot.gateway.clients import origin_allowed
from bot.gateway.errors import Handler, domain_errors
from bot.gateway.hub import Hub
from bot.gateway.keys import (
    ANSWERER, CLOCK, DESK, GATEWAY_ID, HANDOFF, LIMITS, MAIL, ONCALL, ROUTER, SETTINGS, SIO, STORE, VISITORS, WELCOME,
)
from bot.kb.welcome import WELCOME_FILE, WelcomeFile
from bot.gateway.limits import RateLimits
from bot.gateway.locks import ConversationLocks
from bot.gateway.lead_console import add_lead_routes
from bot.gateway.router import ConversationRouter, Patience
from bot.gateway.staff_auth import add_auth_routes
from bot.gateway.staff_security import add_security_routes
from bot.gateway.visitor_presence import VisitorPresence
from bot.gateway.visitor_socket import PacketJson, register_visitor_events
from bot.handoff.lifecycle import TicketDesk
from bot.handoff.oncall import OnCallWatch, outbound_mail
from bot.handoff.policy import SupportPolicy
from bot.handoff.service import HandoffService
from bot.identity import issue_token
from bot.mail.compose import EMAIL_FILE, load_email_style
from bot.mail.inbound import ReplyHandler, start_inbound_server
from bot.mail.outgoing import MailPolicy, MailPump
from bot.mail.transport import transport_for
from bot.rasa_servers import RasaServers
from bot.settings import Settings
from bot.store.customers import all_customers, find_customer
from bot.store.database import Store, migrate

logger = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "deskmate_staff"
RESUME_WAIT_SECONDS = 600  # how long a starting gateway waits for a whole bot before answering what was left
MAX_PACKETS_PER_POST = 1000  # engine.io's default is 16; the POST's size cap (1 MB) bounds the work anyway
RETURN_CHECK_SECONDS = 5.0  # how often a gateway looks for conversations an outage handed to the team

# Pages the gateway serves render only its own scripts and styles.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; frame-ancestors 'self'; base-uri 'none'; form-action 'self'"
)


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """No sniffing, no framing by strangers, only our own scripts on our pages."""
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if response.content_type == "text/html":
        response.headers.setdefault("Content-Security-Policy", CSP)
    return response


async def demo_page(request: web.Request) -> web.Response:
    """The demo site hosting the widget (with the "chat as" switch in demo mode)."""
    settings = request.app[SETTINGS]
    customers = []
    if settings.demo_mode:
        records = await asyncio.to_thread(all_customers, request.app[STORE])
        customers = [{"email": c.email, "name": c.name, "plan": c.plan, "status": c.status} for c in records]
    return aiohttp_jinja2.render_template(
        "demo.html", request, {"demo_mode": settings.demo_mode, "demo_customers": customers, "widget_url": "/widget/widget.js"}
    )


async def demo_token(request: web.Request) -> web.Response:
    """A signed identity token for a demo customer (demo mode only: the website's job in production)."""
    settings = request.app[SETTINGS]
    if not settings.demo_mode:
        raise web.HTTPNotFound()
    email = request.query.get("email", "")
    customer = await asyncio.to_thread(find_customer, request.app[STORE], email) if email else None
    if customer is None:
        return web.json_response({"error": "no such demo customer"}, status=404)
    return web.json_response({"token": issue_token(settings.resolved_identity_secret(), customer.email)})


async def favicon(request: web.Request) -> web.FileResponse:
    """The staff pages' icon (a chat bubble, 16/32/48 px), also where browsers look for one unasked."""
    return web.FileResponse(HERE / "static" / "favicon.ico", headers={
        "Content-Type": "image/x-icon", "Cache-Control": "public, max-age=86400"})


async def health(request: web.Request) -> web.Response:
    """For load balancers and `make run`: the gateway answers."""
    return web.json_response({"status": "ok"})


async def services(app: web.Application) -> AsyncIterator[None]:
    """Build the process's services at start-up (migrating the store first), close them at shutdown."""
    settings = app[SETTINGS]
    url = settings.resolved_database_url()
    await asyncio.to_thread(migrate, url)
    settings.resolved_api_token()  # made at start-up, so var/api-token is there for the first API client
    store = Store(url)
    bot = RasaServers(settings.rasa_urls(), settings.resolved_rasa_token(), settings.bot_timeout_seconds)
    handoff = HandoffService(
        store, settings.resolved_identity_secret(), SupportPolicy.load(settings.support_policy_file), app[CLOCK]
    )
    hub = Hub(app[SIO], app[VISITORS])
    desk = TicketDesk(handoff, hub, timedelta(seconds=settings.mail_delay_seconds))
    limits = RateLimits(settings)
    # A conversation's lock outlives the longest turn: the bot's timeout, with room for the store.
    locks = ConversationLocks(settings.redis_url, hold_seconds=settings.bot_timeout_seconds + 30)
    if not await locks.reachable():
        logger.error("gateway: Redis at DESKMATE_REDIS_URL cannot be reached: visitors are asked to send their "
                     "messages again (nothing is accepted) until it can")
    app[STORE] = store
    app[HANDOFF] = handoff
    app[DESK] = desk
    app[LIMITS] = limits
    patience = Patience(settings.busy_notice_seconds, settings.outage_seconds, settings.max_waiting_turns,
                        tuple(settings.start_payload_list()))
    app[ROUTER] = ConversationRouter(store, bot, desk, hub, limits, locks, patience)
    app[ANSWERER] = Answerer(settings)
    app[ONCALL] = OnCallWatch(store, handoff.policy, app[CLOCK], hub, app[GATEWAY_ID], mail=outbound_mail(store))
    transport = transport_for(settings)
    app[MAIL] = MailPump(
        store, transport, load_email_style(settings.kb_dir / EMAIL_FILE),
        MailPolicy(settings.mail_from, settings.mail_reply_domain, settings.resolved_mail_secret(),
                   settings.resolved_chat_page_url(), settings.mail_max_attempts, settings.mail_retry_seconds,
                   settings.mail_link_days),
        app[CLOCK], hub.notify_agents,
    )
    if not settings.smtp_relay_host:
        logger.warning("gateway: no SMTP relay is set (DESKMATE_SMTP_RELAY_HOST): e-mails to visitors are written "
                       "to %s instead of being sent", settings.var_dir / "outbox")
    yield
    await app[ONCALL].close()
    await bot.close()
    await locks.close()
    store.dispose()


def in_background(work: Callable[[web.Application], Coroutine[Any, Any, None]]) -> Callable[[web.Application], AsyncIterator[None]]:
    """A ``cleanup_ctx`` entry that runs ``work(app)`` as a task from start-up until shutdown (then cancelled)."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(work(app))
        yield
        task.cancel()

    return context


async def resume_unanswered(app: web.Application) -> None:
    """Once the bot is whole (Rasa *and* its action server answer), answer the visitor messages a
    stopped gateway stored but never answered, sent in the last ``resume_window_minutes``. After
    RESUME_WAIT_SECONDS without a whole bot it goes ahead anyway: then the router's outage path opens
    tickets, and a person follows up."""
    settings: Settings = app[SETTINGS]
    if settings.resume_window_minutes <= 0:
        return
    router: ConversationRouter = app[ROUTER]
    since = app[CLOCK]() - timedelta(minutes=settings.resume_window_minutes)
    deadline = time.monotonic() + RESUME_WAIT_SECONDS
    while not await router.bot.whole() and time.monotonic() < deadline:
        await asyncio.sleep(2)
    try:
        answered = await router.resume(since)
    except Exception:  # noqa: BLE001 (logged; the visitors' next messages are answered as usual)
        logger.exception("gateway: could not answer the messages a stopped gateway left")
        return
    if answered:
        logger.warning("gateway: answered %d message(s) a stopped gateway had left unanswered", answered)


async def return_after_outage(app: web.Application) -> None:
    """Every RETURN_CHECK_SECONDS, conversations an outage handed to the team that no agent took go back
    to the bot once it is whole again, and what they held is answered (also for a visitor who has left:
    it is in the history when they come back)."""
    router: ConversationRouter = app[ROUTER]
    while True:
        await asyncio.sleep(RETURN_CHECK_SECONDS)
        try:
            returned = await router.return_after_outage()
        except Exception:  # noqa: BLE001 (logged; tried again at the next check)
            logger.exception("gateway: could not give conversations back to the bot after an outage")
            continue
        if returned:
            logger.warning("gateway: %d conversation(s) went back to the bot after an outage", returned)


async def watch_promises(app: web.Application) -> None:
    """Every ``oncall_check_seconds``, look after the promises made to waiting visitors: a notice when a
    first-reply due time is about to pass, alerts to the on-call people (bot/handoff/oncall.py). Every
    gateway runs it; the store's claims make each notice and alert happen once."""
    watch: OnCallWatch = app[ONCALL]
    while True:
        await asyncio.sleep(app[SETTINGS].oncall_check_seconds)
        try:
            await watch.round()
        except Exception:  # noqa: BLE001 (logged; the next round tries again)
            logger.exception("gateway: the on-call watch failed")
async def visitor_presence(app: web.Application) -> AsyncIterator[None]:
    """With several gateways, refresh this gateway's visitors in Redis every ``presence_heartbeat_seconds``
    (the fallback for a gateway that stops without saying so); at shutdown they stop counting at once."""
    presence: VisitorPresence = app[VISITORS]

    async def beat() -> None:
        while True:
            await asyncio.sleep(app[SETTINGS].presence_heartbeat_seconds)
            await presence.heartbeat()

    task = asyncio.create_task(beat()) if presence.several_gateways else None
    yield
    if task is not None:
        task.cancel()
    await presence.close()


async def send_mail(app: web.Application) -> None:
    """Every ``mail_poll_seconds``, send the e-mails that are due (each by one gateway only)."""
    await app[MAIL].run(app[SETTINGS].mail_poll_seconds)


async def receive_mail(app: web.Application) -> AsyncIterator[None]:
    """The SMTP server for visitors' e-mail replies on ``smtp_inbound_host``:``smtp_inbound_port`` (0: none)."""
    settings: Settings = app[SETTINGS]
    server: Optional[asyncio.AbstractServer] = None
    if settings.smtp_inbound_port:
        handler = ReplyHandler(app[STORE], settings.resolved_mail_secret(), settings.mail_reply_domain, app[CLOCK],
                               app[ROUTER].hub.notify_agents, app[LIMITS])
        try:
            server = await start_inbound_server(handler, settings.smtp_inbound_host, settings.smtp_inbound_port)
            logger.info("gateway: receiving e-mail replies on %s:%s", settings.smtp_inbound_host, settings.smtp_inbound_port)
        except OSError as error:
            logger.error("gateway: cannot receive e-mail replies on %s:%s (%s); another gateway may be receiving them",
                         settings.smtp_inbound_host, settings.smtp_inbound_port, error.strerror or error)
    yield
    if server is not None:
        server.close()
        await server.wait_closed()


def make_app(settings: Settings, clock: Optional[Clock] = None) -> web.Application:
    """The gateway, wired to the bot at ``settings.rasa_url`` and the store at its database URL.

    ``clock`` defaults to the settings' (``fixed_now``, else the real one).
    """
    app = web.Application(middlewares=[security_headers, domain_errors], client_max_size=64 * 1024)
    app[SETTINGS] = settings
    app[GATEWAY_ID] = uuid.uuid4().hex
    app[CLOCK] = clock or clock_for(settings.fixed_now)
    app[WELCOME] = WelcomeFile(settings.kb_dir / WELCOME_FILE)
    setup_sessions(
        app,
        EncryptedCookieStorage(
            settings.resolved_session_key(),
            # Behind HTTPS: Secure, and the __Host- prefix (no Domain, Path=/) so no sibling site can set it.
            cookie_name=f"__Host-{SESSION_COOKIE}" if settings.secure_cookies else SESSION_COOKIE,
            max_age=settings.staff_session_hours * 3600,
            httponly=True,
            secure=settings.secure_cookies,
            samesite="Strict",
            path="/",
        ),
    )
    aiohttp_jinja2.setup(
        app, loader=jinja2.FileSystemLoader(str(HERE / "templates")), autoescape=jinja2.select_autoescape(default=True)
    )
    # Only the gateway's own pages and the allow-listed sites may open a socket from a browser (OWASP ASVS).
    allowed = settings.origins()
    # Several gateways: socket.io's emits to a room go through Redis to every gateway's sockets.
    manager = socketio.AsyncRedisManager(settings.redis_url) if settings.redis_url else None
    # A long-polling widget sends what it queued in one POST; engine.io refuses a POST of more than 16
    # packets outright (Payload.max_decode_packets), so a burst typed or pasted while a POST was in flight
    # was lost without a word (found by a break-it test). The POST's size stays capped below (1 MB), and
    # the rate limits answer a flood message by message.
    Payload.max_decode_packets = MAX_PACKETS_PER_POST
    sio = socketio.AsyncServer(
        client_manager=manager,
        # Packets up to 1 MB are read, so that an over-long message gets an answer, not a closed socket.
        async_mode="aiohttp", max_http_buffer_size=1024 * 1024, json=PacketJson,
        cors_allowed_origins=lambda origin, environ: origin_allowed(origin, environ, allowed),
    )
    sio.attach(app)
    app[SIO] = sio
    app[VISITORS] = VisitorPresence(app[GATEWAY_ID], settings.redis_url, settings.presence_ttl_seconds)
    register_visitor_events(sio, app)
    register_agent_socket(sio, app)
    app.cleanup_ctx.append(services)
    app.cleanup_ctx.append(staff_socket_watch)
    app.cleanup_ctx.append(agent_presence)
    app.cleanup_ctx.append(visitor_presence)
    app.cleanup_ctx.append(in_background(watch_promises))
    app.cleanup_ctx.append(in_background(resume_unanswered))
    app.cleanup_ctx.append(in_background(return_after_outage))
    app.cleanup_ctx.append(in_background(send_mail))
    app.cleanup_ctx.append(receive_mail)
    app.router.add_get("/", demo_page)
    app.router.add_get("/demo/token", demo_token)
    app.router.add_get("/health", health)
    app.router.add_get("/favicon.ico", favicon)
    app.router.add_static("/widget/", HERE / "static", show_index=False)
    add_api_routes(app)
    add_auth_routes(app)
    add_security_routes(app)
    add_agent_routes(app)
    add_lead_routes(app)
    return app
