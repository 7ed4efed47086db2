"""The JSON HTTP API for server-to-server channels: send a visitor's message, get the replies.

``POST /api/messages`` with ``Authorization: Bearer <DESKMATE_API_TOKEN>``
and ``{"sender": "...", "message": "...", "metadata": {"user_token": "..."}}``
answers ``{"conversation_id": "api:<sender>", "messages": [...]}`` (the
widget's message format). Routing, storage and cleaning are the widget's; a
conversation over its rate limit gets 429 with Retry-After (seconds), a
message that could not be stored 503 (send it again).
"""
from __future__ import annotations

import secrets

from aiohttp import web

from bot.dialogue.input_check import clean_text
from bot.gateway.errors import RequestError
from bot.gateway.keys import ROUTER, SETTINGS

MAX_SENDER_CHARS = 200


async def post_message(request: web.Request) -> web.Response:
    """Relay one message and answer with the replies."""
    expected = f"Bearer {request.app[SETTINGS].resolved_api_token()}"
    if not secrets.compare_digest(request.headers.get("Authorization", ""), expected):
        return web.json_response({"error": "missing or wrong API token"}, status=401)
    try:
        body = await request.json()
    except ValueError:
        raise RequestError("the body must be JSON") from None
    sender, message = (body.get("sender"), body.get("message")) if isinstance(body, dict) else (None, None)
    if not isinstance(sender, str) or not sender.strip() or len(sender) > MAX_SENDER_CHARS:
        raise RequestError(f"'sender' must be a non-empty string of at most {MAX_SENDER_CHARS} characters")
    if not isinstance(message, str):
        raise RequestError("'message' must be a string")
    metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
    conversation = f"api:{clean_text(sender).strip()}"
    replies = await request.app[ROUTER].visitor_message(conversation, message, metadata)
    return web.json_response({"conversation_id": conversation, "messages": replies})


def add_api_routes(app: web.Application) -> None:
    """Register the JSON API."""
    app.router.add_post("/api/messages", post_message)
