"""Routing a conversation: every message stored first, then to the bot or to the team.

While the conversation is with the bot, the visitor's messages go to
Rasa's REST channel (with their identity token only when it verifies).
Once a ticket is open they go to the agents instead, and the bot stays
quiet. When an agent resolves the ticket or hands it back, the bot resumes
and asks for a rating. When the bot does not answer in time, the visitor is
told so, the message is kept, and a ticket makes sure a person follows up.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional

from bot.gateway.hub import Hub
from bot.gateway.relay import PAYLOAD_KEY, BotUnavailableError, OutMessage, RasaRelay
from bot.handoff.messages import handoff_payload
from bot.handoff.service import HandoffService, Trouble, Visitor
from bot.identity import TOKEN_METADATA_KEY
from bot.store.feedback import record_csat
from bot.store.messages import MessageRecord, conversation_messages, record_message, record_messages
from bot.store.tickets import (
    TicketRecord,
    assign_ticket,
    record_visitor_message,
    get_ticket,
    hand_back_ticket,
    record_agent_reply,
    resolve_ticket,
)

logger = logging.getLogger(__name__)

UNAVAILABLE_TEXT = (
    "Sorry, the assistant isn't answering right now. Your message is saved, "
    "and a person from our support team will follow up here."
)
RATING_TEXT = "How did we do? Please rate the help you got."
RATING_THANKS = "Thanks for your rating!"


class NotYourTicketError(LookupError):
    """A ticket that does not exist, or an action on one that does not allow it."""


@dataclass(frozen=True)
class Agent:
    """The staff member acting (from the signed-in session)."""

    email: str
    name: str


def message_view(record: MessageRecord) -> Dict[str, Any]:
    """A stored message as the widget and the inbox render it."""
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


def deskmate(message: OutMessage) -> Dict[str, Any]:
    """The ``deskmate`` payload of an outgoing message (empty if none)."""
    return (message.get("metadata") or {}).get(PAYLOAD_KEY) or {}


class ConversationService:
    """The gateway's conversation logic; shared state lives in the store and Rasa, never here."""

    def __init__(self, database_url: str, relay: RasaRelay, handoff: HandoffService, hub: Hub) -> None:
        self.database_url = database_url
        self.relay = relay
        self.handoff = handoff
        self.hub = hub

    async def _store(self, conversation_id: str, sender: str, message: OutMessage, author: Optional[str] = None) -> MessageRecord:
        payload = {"quick_replies": message.get("quick_replies") or [], "metadata": message.get("metadata") or {}}
        return await asyncio.to_thread(
            record_message, self.database_url, conversation_id, sender, message.get("text") or "",
            self.handoff.now(), payload, author,
        )

    async def history(self, conversation_id: str) -> List[Dict[str, Any]]:
        """Everything said in a conversation, oldest first."""
        records = await asyncio.to_thread(conversation_messages, self.database_url, conversation_id)
        return [message_view(r) for r in records]

    def _receive(self, conversation_id: str, text: str) -> Optional[TicketRecord]:
        """Store the visitor's message first; then the conversation's open ticket."""
        return record_visitor_message(self.database_url, conversation_id, text, self.handoff.now())

    async def _store_replies(self, conversation_id: str, replies: List[OutMessage]) -> None:
        """The bot's messages of one turn, in one transaction."""
        rows = [
            ("bot", r.get("text") or "", {"quick_replies": r.get("quick_replies") or [], "metadata": r.get("metadata") or {}})
            for r in replies
        ]
        await asyncio.to_thread(record_messages, self.database_url, conversation_id, rows, self.handoff.now())

    async def visitor_message(self, conversation_id: str, text: str, metadata: Mapping[str, Any]) -> List[OutMessage]:
        """Store the visitor's message, then route it; the replies for the visitor (none while the team has it)."""
        ticket = await asyncio.to_thread(self._receive, conversation_id, text)
        if ticket is not None:
            await self.hub.notify_agents("ticket_message", {"ticket": ticket.id})
            return []
        # Only a token that verifies travels on; the actions check it again and look the customer up.
        verified = not self.handoff.identity(metadata).anonymous
        forwarded = {TOKEN_METADATA_KEY: metadata[TOKEN_METADATA_KEY]} if verified else {}
        try:
            replies = await self.relay.send(conversation_id, text, forwarded)
        except BotUnavailableError as error:
            logger.error("gateway: %s; opening a ticket so a person follows up", error)
            visitor = await asyncio.to_thread(self.handoff.visitor, metadata)
            replies = await self._bot_unavailable(conversation_id, visitor)
        await self._store_replies(conversation_id, replies)
        if any(deskmate(r).get("type") == "handoff" for r in replies):
            await self.hub.notify_agents("queue_changed", {})
        return replies

    async def _bot_unavailable(self, conversation_id: str, visitor: Visitor) -> List[OutMessage]:
        notice: OutMessage = {"text": UNAVAILABLE_TEXT, "quick_replies": [], "metadata": {PAYLOAD_KEY: {"type": "notice"}}}
        events = [
            {"event": "user" if m["from"] == "visitor" else "bot", "text": m["text"]}
            for m in await self.history(conversation_id)
        ]
        outcome = await asyncio.to_thread(
            self.handoff.open_ticket, conversation_id, visitor, Trouble.BOT_UNAVAILABLE, events
        )
        if outcome.ticket is None:
            notice["text"] = (
                "Sorry, the assistant isn't answering right now, and I couldn't pass your message to the team "
                "either. Please try again in a few minutes."
            )
            return [notice]
        notice["metadata"][PAYLOAD_KEY] = handoff_payload(outcome.ticket, outcome.created, outcome)[PAYLOAD_KEY]
        notice["text"] += f" Your ticket is {outcome.ticket.number}."
        return [notice]

    async def _ticket(self, ticket_id: int) -> TicketRecord:
        ticket = await asyncio.to_thread(get_ticket, self.database_url, ticket_id)
        if ticket is None:
            raise NotYourTicketError(f"no ticket #{ticket_id}")
        return ticket

    async def _to_visitor(self, ticket: TicketRecord, sender: str, message: OutMessage, author: Optional[str] = None) -> None:
        await self._store(ticket.conversation_id, sender, message, author)
        await self.hub.send_to_visitor(ticket.conversation_id, message)

    async def claim(self, ticket_id: int, agent: Agent) -> TicketRecord:
        """An agent takes the ticket; the visitor is told who joined."""
        ticket = await asyncio.to_thread(assign_ticket, self.database_url, ticket_id, agent.email, self.handoff.now())
        await self._to_visitor(ticket, "system", {
            "text": f"{agent.name} joined the conversation.",
            "metadata": {PAYLOAD_KEY: {"type": "agent_joined", "agent_name": agent.name, "ticket": ticket.id}},
        })
        await self.hub.notify_agents("queue_changed", {"ticket": ticket.id})
        return ticket

    async def agent_reply(self, ticket_id: int, agent: Agent, text: str) -> TicketRecord:
        """An agent's message, stored, then sent live to the visitor."""
        ticket = await self._ticket(ticket_id)
        if not ticket.is_open:
            raise NotYourTicketError(f"ticket #{ticket_id} is resolved")
        if ticket.assignee != agent.email:
            ticket = await self.claim(ticket_id, agent)
        await self._to_visitor(ticket, "agent", {
            "text": text,
            "metadata": {PAYLOAD_KEY: {"type": "agent_message", "agent_name": agent.name, "ticket": ticket.id}},
        }, author=agent.email)
        ticket = await asyncio.to_thread(record_agent_reply, self.database_url, ticket_id, agent.email, self.handoff.now())
        await self.hub.notify_agents("ticket_message", {"ticket": ticket.id})
        return ticket

    async def close(self, ticket_id: int, agent: Agent, hand_back: bool) -> TicketRecord:
        """Resolve the ticket (or hand it back to the bot): the bot resumes and asks for a rating."""
        change = hand_back_ticket if hand_back else resolve_ticket
        ticket = await asyncio.to_thread(change, self.database_url, ticket_id, f"agent:{agent.email}", self.handoff.now())
        try:
            await self.relay.resume_bot(ticket.conversation_id)
        except BotUnavailableError as error:
            # The bot notices the closed ticket itself on the visitor's next message.
            logger.warning("gateway: could not resume the bot after ticket %s: %s", ticket.number, error)
        kind = "handed_back" if hand_back else "resolved"
        text = (
            f"{agent.name} handed the conversation back to the assistant."
            if hand_back else f"{agent.name} marked your request as resolved."
        )
        await self._to_visitor(ticket, "system", {"text": text, "metadata": {PAYLOAD_KEY: {"type": "resolved", "how": kind, "ticket": ticket.id}}})
        await self._to_visitor(ticket, "bot", {"text": RATING_TEXT, "metadata": {PAYLOAD_KEY: {"type": "rating_request", "ticket": ticket.id}}})
        await self.hub.notify_agents("queue_changed", {"ticket": ticket.id})
        return ticket

    async def rate(self, conversation_id: str, stars: int) -> OutMessage:
        """Store the visitor's 1-5 rating; the thank-you message."""
        await asyncio.to_thread(record_csat, self.database_url, conversation_id, stars)
        thanks: OutMessage = {"text": RATING_THANKS, "quick_replies": [], "metadata": {PAYLOAD_KEY: {"type": "rating_recorded", "stars": stars}}}
        await self._store(conversation_id, "bot", thanks)
        return thanks
