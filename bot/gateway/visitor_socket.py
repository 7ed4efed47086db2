"""The widget's socket.io events: Rasa's socketio channel protocol, plus history and ratings.

``session_request`` / ``session_confirm`` with session persistence (the
session id is the conversation id, kept by the widget across reloads),
``user_uttered`` in, ``bot_uttered`` out, as Rasa's own channel does, so
the stock rasa-webchat widget works unchanged. Deskmate's own widget also
gets ``deskmate_history`` after confirming a session and may send
``deskmate_rating``.
"""
from __future__ import annotations

import json
import logging
import re
import uuid
from typing import Any, Dict, Optional

import socketio
from aiohttp import web

from bot.gateway.keys import DESK, ROUTER
from bot.gateway.router import visitor_view

logger = logging.getLogger(__name__)

# Session ids are the widget's only key to its conversation: 128 random bits,
# never chosen by the visitor (anything else gets a fresh one).
SESSION_ID = re.compile(r"^[0-9a-f]{32}$")
CONVERSATION_KEY = "conversation_id"


def _metadata(data: Dict[str, Any]) -> Dict[str, Any]:
    metadata = data.get("metadata") or data.get("customData") or {}
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except ValueError:
            return {}
    return metadata if isinstance(metadata, dict) else {}


def register_visitor_events(sio: socketio.AsyncServer, app: web.Application) -> None:
    """Attach the widget's events to the default namespace (services are read from ``app`` when an event comes)."""

    async def conversation_of(sid: str, data: Any) -> Optional[str]:
        """The conversation this socket confirmed, if the message names it (else None: refused)."""
        session = await sio.get_session(sid)
        conversation = session.get(CONVERSATION_KEY)
        claimed = data.get("session_id") if isinstance(data, dict) else None
        if conversation is None or (claimed is not None and claimed != conversation):
            logger.warning("gateway: a socket tried to write to a conversation it did not open")
            return None
        return str(conversation)

    @sio.on("session_request")
    async def session_request(sid: str, data: Any) -> None:
        requested = data.get("session_id") if isinstance(data, dict) else None
        conversation = requested if isinstance(requested, str) and SESSION_ID.match(requested) else uuid.uuid4().hex
        await sio.save_session(sid, {CONVERSATION_KEY: conversation})
        await sio.enter_room(sid, conversation)
        await sio.emit("session_confirm", conversation, room=sid)
        history = await app[ROUTER].history(conversation)
        if history:
            await sio.emit("deskmate_history", {"messages": [visitor_view(m) for m in history]}, room=sid)

    @sio.on("user_uttered")
    async def user_uttered(sid: str, data: Any) -> None:
        conversation = await conversation_of(sid, data)
        if conversation is None or not isinstance(data.get("message"), str):
            return
        replies = await app[ROUTER].visitor_message(conversation, data["message"], _metadata(data))
        for reply in replies:
            await app[ROUTER].hub.send_to_visitor(conversation, reply)

    @sio.on("deskmate_rating")
    async def rating(sid: str, data: Any) -> None:
        conversation = await conversation_of(sid, data)
        stars = data.get("stars") if isinstance(data, dict) else None
        if conversation is None or not isinstance(stars, int) or isinstance(stars, bool) or not 1 <= stars <= 5:
            return
        await app[ROUTER].hub.send_to_visitor(conversation, await app[DESK].rate(conversation, stars))
