"""Live delivery over socket.io: to a visitor's conversation, and to the agents (the handoff's ``Delivery``).

Rooms carry the routing: every socket of a conversation (tabs, reloads)
joins the room named after the conversation id; every signed-in staff
socket joins ``agents`` in the ``/agent`` namespace. Emitting to a room,
not to a socket, is what lets several gateway processes share the work
once python-socketio's Redis manager connects them.

With several gateways, a message to a conversation whose widgets are all on
the emitting gateway (the usual case) is emitted here alone, not published
through Redis for every gateway to decode: the visitor presence in Redis
(bot/gateway/visitor_presence.py) says which gateways hold the
conversation's sockets. A tab opening on another gateway at that moment
loses nothing: it enters its room and writes its presence before it reads
the conversation's history, and a message is stored before it is sent, so
the message is either in that history or sent through Redis.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

import socketio

from bot.gateway.visitor_presence import VisitorPresence
from bot.protocol import WidgetMessage, for_visitor

BOT_MESSAGE_EVENT = "bot_uttered"  # Rasa's socketio channel's name for it
VISITOR_ECHO_EVENT = "deskmate_visitor_message"
AGENT_NAMESPACE = "/agent"
AGENTS_ROOM = "agents"


class Hub:
    """Emits to visitors and agents through one socket.io server."""

    def __init__(self, sio: socketio.AsyncServer, presence: Optional[VisitorPresence] = None) -> None:
        """``presence``: which gateways hold a conversation's sockets; without it (or with one gateway)
        every emit goes through socket.io's client manager as it is."""
        self.sio = sio
        self.presence = presence

    async def send_to_visitor(self, conversation_id: str, message: WidgetMessage) -> None:
        """A message to every open widget of a conversation (never with what is kept for staff only).

        With several gateways it goes through Redis only when another gateway holds, or may hold, a
        socket of the conversation (or Redis cannot say); otherwise it is emitted on this gateway alone.
        """
        await self._to_conversation(BOT_MESSAGE_EVENT, for_visitor(message), conversation_id)

    async def echo_visitor_message(self, conversation_id: str, text: str, sender_sid: str) -> None:
        """A visitor's message (as stored) to the conversation's other open widgets, another tab or
        device, so that each shows the question its answer is for: ``VISITOR_ECHO_EVENT``
        ``{"text"}``, never to the socket ``sender_sid`` that sent it."""
        await self._to_conversation(VISITOR_ECHO_EVENT, {"text": text}, conversation_id, skip_sid=sender_sid)

    async def _to_conversation(
        self, event: str, data: Mapping[str, Any], conversation_id: str, skip_sid: Optional[str] = None
    ) -> None:
        presence = self.presence
        if presence is not None and presence.several_gateways:
            holders = await presence.gateways_of(conversation_id)
            if holders is not None and holders <= {presence.gateway_id}:
                await self.sio.emit(event, data, room=conversation_id, skip_sid=skip_sid, ignore_queue=True)
                return
        await self.sio.emit(event, data, room=conversation_id, skip_sid=skip_sid)

    async def notify_agents(self, event: str, data: Dict[str, Any]) -> None:
        """Tell every signed-in agent that something changed (they fetch what they show)."""
        await self.sio.emit(event, data, room=AGENTS_ROOM, namespace=AGENT_NAMESPACE)
