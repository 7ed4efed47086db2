"""The gateway application: widget, demo page, JSON API, agent inbox, socket.io, on one aiohttp server."""
from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Optional

import aiohttp_jinja2
import jinja2
import socketio
from aiohttp import web
from aiohttp_session import setup as setup_sessions
from aiohttp_session.cookie_storage import EncryptedCookieStorage

from bot.dialogue.answering import Answerer
from bot.gateway.agent_api import add_agent_routes, register_agent_socket
from bot.gateway.api import add_api_routes
from bot.gateway.conversations import ConversationService
from bot.gateway.hub import Hub
from bot.gateway.keys import ANSWERER, CONVERSATIONS, SETTINGS
from bot.gateway.lead_console import add_lead_routes
from bot.gateway.relay import RasaRelay
from bot.gateway.staff_auth import add_auth_routes
from bot.gateway.visitor_socket import register_visitor_events
from bot.handoff.policy import SupportPolicy
from bot.handoff.service import HandoffService, fixed_clock, utc_clock
from bot.identity import issue_token
from bot.settings import Settings
from bot.store.customers import all_customers, find_customer
from bot.store.database import migrate

logger = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "deskmate_staff"
SESSION_MAX_AGE = 12 * 3600

# Pages the gateway serves render only its own scripts and styles.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; frame-ancestors 'self'; base-uri 'none'; form-action 'self'"
)


@web.middleware
async def security_headers(request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
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
        records = await _to_thread(all_customers, settings.resolved_database_url())
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
    customer = await _to_thread(find_customer, settings.resolved_database_url(), email) if email else None
    if customer is None:
        return web.json_response({"error": "no such demo customer"}, status=404)
    return web.json_response({"token": issue_token(settings.resolved_identity_secret(), customer.email)})


async def health(request: web.Request) -> web.Response:
    """For load balancers and `make run`: the gateway answers."""
    return web.json_response({"status": "ok"})


async def _to_thread(function: Callable[..., Any], *args: Any) -> Any:
    import asyncio

    return await asyncio.to_thread(function, *args)


def make_app(settings: Settings, clock: Optional[Callable[[], datetime]] = None) -> web.Application:
    """The gateway, wired to the bot at ``settings.rasa_url`` and the store at its database URL."""
    app = web.Application(middlewares=[security_headers], client_max_size=64 * 1024)
    app[SETTINGS] = settings
    setup_sessions(
        app,
        EncryptedCookieStorage(
            settings.resolved_session_key(),
            cookie_name=SESSION_COOKIE,
            max_age=SESSION_MAX_AGE,
            httponly=True,
            secure=settings.secure_cookies,
            samesite="Strict",
        ),
    )
    aiohttp_jinja2.setup(
        app, loader=jinja2.FileSystemLoader(str(HERE / "templates")), autoescape=jinja2.select_autoescape(default=True)
    )
    sio = socketio.AsyncServer(async_mode="aiohttp", cors_allowed_origins="*", max_http_buffer_size=64 * 1024)
    sio.attach(app)
    hub = Hub(sio)
    if clock is None:
        clock = fixed_clock(datetime.fromisoformat(settings.fixed_now)) if settings.fixed_now else utc_clock
    handoff = HandoffService(
        settings.resolved_database_url(),
        settings.resolved_identity_secret(),
        SupportPolicy.load(settings.support_policy_file),
        clock,
    )
    relay = RasaRelay(settings.rasa_url, settings.resolved_rasa_token(), settings.bot_timeout_seconds)
    service = ConversationService(settings.resolved_database_url(), relay, handoff, hub)
    app[CONVERSATIONS] = service
    app[ANSWERER] = Answerer(settings)
    register_visitor_events(sio, service, hub)
    register_agent_socket(sio)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await _to_thread(migrate, settings.resolved_database_url())
        yield
        await relay.close()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/", demo_page)
    app.router.add_get("/demo/token", demo_token)
    app.router.add_get("/health", health)
    app.router.add_static("/widget/", HERE / "static", show_index=False)
    add_api_routes(app)
    add_auth_routes(app)
    add_agent_routes(app)
    add_lead_routes(app)
    return app
