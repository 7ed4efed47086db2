"""Live delivery over socket.io: to a visitor's conversation, and to the agents (the handoff's ``Delivery``).

Rooms carry the routing: every socket of a conversation (tabs, reloads)
joins the room named after the conversation id; every signed-in staff
socket joins ``agents`` in the ``/agent`` namespace. Emitting to a room,
not to a socket, is what lets several gateway processes share the work
once python-socketio's Redis manager connects them.
"""
from __future__ import annotations

from typing import Any, Dict

import socketio

from bot.protocol import WidgetMessage, for_visitor

BOT_MESSAGE_EVENT = "bot_uttered"  # Rasa's socketio channel's name for it
AGENT_NAMESPACE = "/agent"
AGENTS_ROOM = "agents"


class Hub:
    """Emits to visitors and agents through one socket.io server."""

    def __init__(self, sio: socketio.AsyncServer) -> None:
        self.sio = sio

    async def send_to_visitor(self, conversation_id: str, message: WidgetMessage) -> None:
        """A message to every open widget of a conversation (never with what is kept for staff only)."""
        await self.sio.emit(BOT_MESSAGE_EVENT, for_visitor(message), room=conversation_id)

    async def notify_agents(self, event: str, data: Dict[str, Any]) -> None:
        """Tell every signed-in agent that something changed (they fetch what they show)."""
        await self.sio.emit(event, data, room=AGENTS_ROOM, namespace=AGENT_NAMESPACE)
