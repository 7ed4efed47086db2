"""Typed keys of the gateway application's state (aiohttp's ``web.AppKey``).

``SETTINGS``, ``CLOCK`` and ``SIO`` are set by ``make_app``; the services are
built at start-up in its ``cleanup_ctx`` (and closed at shutdown).
"""
from __future__ import annotations

import socketio
from aiohttp import web

from bot.clock import Clock
from bot.dialogue.answering import Answerer
from bot.gateway.limits import RateLimits
from bot.gateway.router import ConversationRouter
from bot.gateway.visitor_presence import VisitorPresence
from bot.handoff.lifecycle import TicketDesk
from bot.handoff.oncall import OnCallWatch
from bot.handoff.service import HandoffService
from bot.kb.welcome import WelcomeFile
from bot.mail.outgoing import MailPump
from bot.settings import Settings
from bot.store.database import Store

SETTINGS = web.AppKey("settings", Settings)
CLOCK: "web.AppKey[Clock]" = web.AppKey("clock")
SIO = web.AppKey("sio", socketio.AsyncServer)
STORE = web.AppKey("store", Store)
HANDOFF = web.AppKey("handoff", HandoffService)
DESK = web.AppKey("desk", TicketDesk)
ROUTER = web.AppKey("router", ConversationRouter)
LIMITS = web.AppKey("limits", RateLimits)
# The knowledge base and its search index (re-read when kb/ changes): the inbox's and lead console's articles.
ANSWERER = web.AppKey("answerer", Answerer)
# The chat's greeting and starter questions (kb/welcome.yml, re-read when it changes).
WELCOME = web.AppKey("welcome", WelcomeFile)
# This gateway process's id in the store (agents' presence, on-call alert leases), made by make_app.
GATEWAY_ID = web.AppKey("gateway_id", str)
# The watch over promises made to waiting visitors: due-time notices and on-call alerts.
ONCALL = web.AppKey("oncall", OnCallWatch)
# Sends the e-mails that are due (bot/mail/outgoing.py).
MAIL = web.AppKey("mail", MailPump)
# Which conversations have a widget connected, here and (with Redis) on every gateway.
VISITORS = web.AppKey("visitors", VisitorPresence)
