"""Routing a visitor's message: stored first, then to the bot or to the team; the gateway is the only router.

The store decides: while the conversation has an open ticket the message
goes to the agents (and, while the ticket waits for one, the visitor is told
it was added), otherwise to Rasa through the ``deskmate`` channel, with the
visitor's identity token only when it verifies. When the bot does not
answer, the visitor is told so, the message is kept, and a ticket makes sure
a person follows up. The bot's replies are stored with the model's guesses;
the visitor receives them without.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, List, Mapping

from bot.gateway.hub import Hub
from bot.handoff.lifecycle import QUEUE_CHANGED, TICKET_MESSAGE, TicketDesk
from bot.identity import TOKEN_METADATA_KEY
from bot.protocol import MessageKind, Sender, WidgetMessage, for_visitor, from_rasa, kind_of, stored_payload, widget_message_of
from bot.rasa_client import BotUnavailableError, RasaClient
from bot.store.database import Store
from bot.store.messages import MessageRecord, NewMessage, conversation_messages, record_messages
from bot.store.tickets import record_visitor_message

logger = logging.getLogger(__name__)


def visitor_view(record: MessageRecord) -> Dict[str, Any]:
    """A stored message as the widget shows it in the history: no staff e-mail, no model guesses."""
    return {
        "id": record.id,
        "from": record.sender,
        **for_visitor(widget_message_of(record.text, record.payload)),
        "at": record.created_at.isoformat(),
    }


def staff_view(record: MessageRecord) -> Dict[str, Any]:
    """A stored message as the agent inbox shows it (with the agent's e-mail as ``author``)."""
    payload = record.payload or {}
    return {
        "id": record.id,
        "from": record.sender,
        "author": record.author,
        "text": record.text,
        "quick_replies": payload.get("quick_replies") or [],
        "metadata": payload.get("metadata") or {},
        "at": record.created_at.isoformat(),
    }


class ConversationRouter:
    """Routes each visitor message; every piece of conversation state is read from the store."""

    def __init__(self, store: Store, bot: RasaClient, desk: TicketDesk, hub: Hub) -> None:
        self.store = store
        self.bot = bot
        self.desk = desk
        self.handoff = desk.handoff
        self.hub = hub

    async def history(self, conversation_id: str) -> List[MessageRecord]:
        """Everything said in a conversation, oldest first."""
        return await asyncio.to_thread(conversation_messages, self.store, conversation_id)

    async def _store(self, conversation_id: str, sender: Sender, replies: List[WidgetMessage]) -> None:
        """The messages of one turn, in one transaction."""
        if not replies:
            return
        rows = [NewMessage(sender.value, reply["text"], stored_payload(reply)) for reply in replies]
        await asyncio.to_thread(record_messages, self.store, conversation_id, rows, self.handoff.now())

    async def visitor_message(self, conversation_id: str, text: str, metadata: Mapping[str, Any]) -> List[WidgetMessage]:
        """Store the visitor's message, then route it; what the visitor is told (already stored)."""
        ticket = await asyncio.to_thread(record_visitor_message, self.store, conversation_id, text, self.handoff.now())
        if ticket is not None:
            await self.hub.notify_agents(TICKET_MESSAGE, {"ticket": ticket.id})
            acknowledged = self.desk.acknowledgement(ticket)
            await self._store(conversation_id, Sender.BOT, acknowledged)
            return acknowledged
        # Only a token that verifies travels on; the actions check it again and look the customer up.
        verified = not self.handoff.identity(metadata).anonymous
        forwarded = {TOKEN_METADATA_KEY: metadata[TOKEN_METADATA_KEY]} if verified else {}
        try:
            replies = from_rasa(list(await self.bot.send(conversation_id, text, forwarded)))
            if not replies:
                # Every turn of this bot says something; silence means the action server failed.
                raise BotUnavailableError("the bot answered nothing")
        except BotUnavailableError as error:
            logger.error("gateway: %s; opening a ticket so a person follows up", error)
            visitor = await asyncio.to_thread(self.handoff.visitor, metadata)
            replies = await asyncio.to_thread(self.desk.bot_unreachable, conversation_id, visitor)
        await self._store(conversation_id, Sender.BOT, replies)
        if any(kind_of(reply) is MessageKind.HANDOFF for reply in replies):
            await self.hub.notify_agents(QUEUE_CHANGED, {})
        return [for_visitor(reply) for reply in replies]
