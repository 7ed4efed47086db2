"""A ticket's life after it opens: an agent claims it, replies, resolves it or hands it back, the visitor rates.

Each step is one store transaction that changes the ticket and stores what
the visitor is told; only after it commits does anything reach the visitor
(``Delivery``), so a ticket resolved in the meantime refuses an agent's
reply before the visitor could see it. The messages say who acted by
display name, never by e-mail.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Dict, List, Optional, Protocol, Sequence, Union

from bot.handoff import texts
from bot.handoff.messages import handoff_payload
from bot.handoff.rules import Signal, Situation, should_open_ticket
from bot.handoff.service import HandoffService, Visitor
from bot.mail.addresses import ContactEmailError
from bot.protocol import (
    ClosedHow,
    Sender,
    TicketStatus,
    WidgetMessage,
    stored_payload,
    widget_message,
)
from bot.store.feedback import record_csat
from bot.store.messages import NewMessage, record_message
from bot.store.tickets import TicketRecord, assign_ticket, close_ticket, record_agent_reply, set_contact_email

# Live-update events for the agents' inbox (their sockets re-read what they show).
QUEUE_CHANGED = "queue_changed"
TICKET_MESSAGE = "ticket_message"



class Unchecked:
    """``close``'s default: the caller states no assignee it saw (the JSON API without one)."""


UNCHECKED = Unchecked()

class Delivery(Protocol):
    """Live delivery (the gateway's socket.io hub): to a conversation's open widgets, and to the agents."""

    async def send_to_visitor(self, conversation_id: str, message: WidgetMessage) -> None: ...

    async def notify_agents(self, event: str, data: Dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class Agent:
    """The staff member acting (from the signed-in session): ``email`` identifies, ``name`` is shown."""

    email: str
    name: str


def _new(sender: Sender, message: WidgetMessage, author: Optional[str] = None) -> NewMessage:
    return NewMessage(sender.value, message["text"], stored_payload(message), author)


class TicketDesk:
    """The ticket lifecycle for one process, over the store, the support policy's service and a delivery."""

    def __init__(self, handoff: HandoffService, delivery: Delivery, mail_delay: Optional[timedelta] = None) -> None:
        self.handoff = handoff
        self.store = handoff.store
        self.delivery = delivery
        # A reply or resolution no widget showed within this long is e-mailed (None: no e-mail).
        self.mail_delay = mail_delay

    def _mail_after(self, now: datetime) -> Optional[datetime]:
        return now + self.mail_delay if self.mail_delay is not None else None

    async def _deliver(self, conversation_id: str, messages: Sequence[WidgetMessage], ticket_id: int) -> None:
        for message in messages:
            await self.delivery.send_to_visitor(conversation_id, message)
        await self.delivery.notify_agents(QUEUE_CHANGED, {"ticket": ticket_id})

    async def claim(self, ticket_id: int, agent: Agent) -> TicketRecord:
        """The agent takes the ticket; the visitor is told who joined. Raises TicketNotFoundError, TicketStateError."""
        joined = widget_message(texts.agent_joined(agent.name), {"type": "agent_joined", "agent_name": agent.name, "ticket": ticket_id})
        change = await asyncio.to_thread(
            assign_ticket, self.store, ticket_id, agent.email, self.handoff.now(), None, _new(Sender.SYSTEM, joined)
        )
        await self._deliver(change.ticket.conversation_id, [joined], ticket_id)
        return change.ticket

    async def reply(self, ticket_id: int, agent: Agent, text: str, take_over: bool = True) -> TicketRecord:
        """The agent's message: stored with the ticket's change in one transaction, then sent live.

        An agent replying to a ticket someone else (or nobody) has takes it, and
        the visitor is told who joined first; without ``take_over``, a colleague's
        ticket is not taken (ChangedHandsError). Raises TicketStateError when the
        ticket was resolved in the meantime: then nothing is stored or sent.
        """
        joined = widget_message(texts.agent_joined(agent.name), {"type": "agent_joined", "agent_name": agent.name, "ticket": ticket_id})
        said = widget_message(text, {"type": "agent_message", "agent_name": agent.name, "ticket": ticket_id})
        now = self.handoff.now()
        change = await asyncio.to_thread(
            record_agent_reply, self.store, ticket_id, agent.email, now,
            _new(Sender.AGENT, said, agent.email), _new(Sender.SYSTEM, joined), self._mail_after(now), take_over,
        )
        sent = [joined, said] if len(change.messages) == 2 else [said]
        for message in sent:
            await self.delivery.send_to_visitor(change.ticket.conversation_id, message)
        await self.delivery.notify_agents(TICKET_MESSAGE, {"ticket": ticket_id})
        return change.ticket

    async def close(
        self, ticket_id: int, agent: Agent, how: ClosedHow, seen: Union[Optional[str], Unchecked] = UNCHECKED
    ) -> TicketRecord:
        """Resolve the ticket or hand it back to the bot; the visitor is told and asked for a rating.

        From then on the gateway routes the conversation to the bot again (the
        store says no ticket is open). ``seen``: the assignee the agent saw when
        deciding (None: nobody); when given, a ticket a colleague took since is
        not closed (ChangedHandsError). Raises TicketNotFoundError, TicketStateError.
        """
        said = texts.handed_back(agent.name) if how is ClosedHow.HANDED_BACK else texts.resolved(agent.name)
        notice = widget_message(said, {"type": "resolved", "how": how.value, "ticket": ticket_id})
        ask = widget_message(texts.RATING_REQUEST, {"type": "rating_request", "ticket": ticket_id})
        now = self.handoff.now()
        change = await asyncio.to_thread(
            close_ticket, self.store, ticket_id, f"agent:{agent.email}", now, how, None,
            [_new(Sender.SYSTEM, notice), _new(Sender.BOT, ask)],
            # Only a resolution is e-mailed: a conversation handed back to the bot needs nothing more.
            self._mail_after(now) if how is ClosedHow.RESOLVED else None,
            None if isinstance(seen, Unchecked) else (agent.email, seen),
        )
        await self._deliver(change.ticket.conversation_id, [notice, ask], ticket_id)
        return change.ticket

    async def rate(self, conversation_id: str, ticket_id: object, stars: object) -> Optional[WidgetMessage]:
        """Store the visitor's 1-5 rating of a ticket; the thank-you message (stored).

        None when the bot never asked this conversation to rate that ticket
        (nothing is stored); a second rating of a ticket replaces the first.
        Raises ValueError (stars not 1-5), StoreError.
        """
        now = self.handoff.now()
        if await asyncio.to_thread(record_csat, self.store, conversation_id, ticket_id, stars, now) is None:
            return None
        assert isinstance(stars, int)
        thanks = widget_message(texts.RATING_THANKS, {"type": "rating_recorded", "stars": stars})
        await asyncio.to_thread(
            record_message, self.store, conversation_id, Sender.BOT.value, thanks["text"], now, stored_payload(thanks)
        )
        return thanks

    async def keep_contact(self, conversation_id: str, email: str) -> Optional[WidgetMessage]:
        """Keep a (validated) address for e-mailing the open ticket's replies; the confirmation (stored,
        without the address, which only staff see). None when the conversation has no open ticket.
        Raises ContactEmailError for a signed-in customer's ticket (replies go to the account's
        address), StoreError."""
        ticket = await asyncio.to_thread(set_contact_email, self.store, conversation_id, email)
        if ticket is None:
            return None
        if ticket.customer_id is not None:
            raise ContactEmailError(texts.CONTACT_FROM_ACCOUNT)
        saved = widget_message(texts.CONTACT_SAVED, {"type": "contact_saved", "ticket": ticket.id})
        await asyncio.to_thread(
            record_message, self.store, conversation_id, Sender.SYSTEM.value, saved["text"], self.handoff.now(),
            stored_payload(saved),
        )
        await self.delivery.notify_agents(TICKET_MESSAGE, {"ticket": ticket.id})
        return saved

    def acknowledgement(self, ticket: TicketRecord) -> List[WidgetMessage]:
        """What a visitor is told of a message sent while the ticket waits for an agent (nothing once one is there)."""
        if ticket.status != TicketStatus.OPEN.value:
            return []
        return [widget_message(texts.with_team(ticket.number), {"type": "with_team", "ticket": ticket.id})]

    def bot_unreachable(self, conversation_id: str, visitor: Visitor) -> List[WidgetMessage]:
        """The bot did not answer: a ticket so that a person follows up, and the notice saying so."""
        reason = should_open_ticket(Situation(Signal.BOT_UNREACHABLE), self.handoff.rules_for(visitor))
        assert reason is not None, "an unreachable bot always calls for a person"
        outcome = self.handoff.open_ticket(conversation_id, visitor, reason)
        if outcome.ticket is None:
            return [widget_message(texts.BOT_AND_TICKETS_UNAVAILABLE, {"type": "notice"})]
        payload = handoff_payload(outcome.ticket, outcome.created, outcome)
        return [widget_message(texts.bot_unavailable_with_ticket(outcome.ticket.number), payload)]

