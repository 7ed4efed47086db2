"""Typed keys of the gateway application's state (aiohttp's ``web.AppKey``)."""
from __future__ import annotations

from aiohttp import web

from bot.dialogue.answering import Answerer
from bot.gateway.conversations import ConversationService
from bot.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
CONVERSATIONS = web.AppKey("conversations", ConversationService)
ANSWERER = web.AppKey("answerer", Answerer)
