"""The JSON HTTP API for server-to-server channels: send a visitor's message, get the replies.

``POST /api/messages`` with ``Authorization: Bearer <DESKMATE_API_TOKEN>``
and ``{"sender": "...", "message": "...", "metadata": {"user_token": "..."}}``
answers ``{"conversation_id": "api:<sender>", "messages": [...]}`` (the
widget's message format). ``GET /api/messages?sender=...&after=ID`` gives the
conversation's messages after message ID (agent replies arrive there, as
they do live on the widget's socket). Routing, storage and cleaning are the widget's; a
conversation over its rate limit gets 429 with Retry-After (seconds), a
message that could not be stored 503 (send it again).
"""
from __future__ import annotations

import asyncio
import secrets

from aiohttp import web

from bot.dialogue.input_check import clean_text
from bot.gateway.errors import MAX_ID, RequestError, json_body
from bot.gateway.keys import ROUTER, SETTINGS, STORE
from bot.gateway.router import visitor_view
from bot.store.messages import conversation_messages

MAX_SENDER_CHARS = 200


def _authorised(request: web.Request) -> bool:
    expected = f"Bearer {request.app[SETTINGS].resolved_api_token()}"
    return secrets.compare_digest(request.headers.get("Authorization", ""), expected)


def _conversation(sender: object) -> str:
    """The conversation of an API sender (cleaned first: a sender of control characters alone is empty)."""
    cleaned = clean_text(sender).strip() if isinstance(sender, str) else ""
    if not cleaned or len(cleaned) > MAX_SENDER_CHARS:
        raise RequestError(f"'sender' must be a non-empty string of at most {MAX_SENDER_CHARS} characters")
    return f"api:{cleaned}"


async def get_messages(request: web.Request) -> web.Response:
    """``GET /api/messages?sender=...&after=ID``: the conversation's messages after message ``after``
    (0: all), as the visitor sees them, oldest first; the way a channel fetches agent replies."""
    if not _authorised(request):
        return web.json_response({"error": "missing or wrong API token"}, status=401)
    conversation = _conversation(request.query.get("sender"))
    after = request.query.get("after", "0")
    if not after.isdigit() or int(after) > MAX_ID:
        raise RequestError("'after' must be a message id (a whole number, 0 for all)")
    records = await asyncio.to_thread(conversation_messages, request.app[STORE], conversation, int(after) or None)
    return web.json_response({"conversation_id": conversation, "messages": [visitor_view(r) for r in records]})


async def post_message(request: web.Request) -> web.Response:
    """Relay one message and answer with the replies."""
    if not _authorised(request):
        return web.json_response({"error": "missing or wrong API token"}, status=401)
    body = await json_body(request, '{"sender": "...", "message": "...", "metadata": {...}}')
    sender, message = (body.get("sender"), body.get("message")) if isinstance(body, dict) else (None, None)
    conversation = _conversation(sender)
    if not isinstance(message, str):
        raise RequestError("'message' must be a string")
    metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
    replies = await request.app[ROUTER].visitor_message(conversation, message, metadata)
    return web.json_response({"conversation_id": conversation, "messages": replies})


def add_api_routes(app: web.Application) -> None:
    """Register the JSON API."""
    app.router.add_post("/api/messages", post_message)
    app.router.add_get("/api/messages", get_messages)
