"""Routing a visitor's message: cleaned, stored first, then to the bot or to the team; the gateway is the only router.

The store decides: while the conversation has an open ticket the message
goes to the agents (and, while the ticket waits for one, the visitor is told
it was added), otherwise to Rasa through the ``deskmate`` channel, with the
visitor's identity token only when it verifies. The messages of one
conversation are taken one at a time, in the order received
(``ConversationLocks``), and each is answered before the next.

Visitor text is text: a message that starts with "/" reaches Rasa as a
command (an intent payload) only when it is a button the bot offered in
this conversation, or a start payload (answered with the greeting);
anything else reaches it as words. When the bot does not answer, the
visitor is told so, the message is kept, and a ticket makes sure a person
follows up; when it answers again and no agent has taken that ticket, the
conversation goes back to the bot by itself. An empty answer is not an
outage. The bot's replies are stored with the model's guesses; the visitor
receives them without.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from bot.dialogue.input_check import clean_text
from bot.gateway.hub import Hub
from bot.gateway.limits import RateLimits
from bot.gateway.locks import ConversationLocks
from bot.handoff import texts
from bot.handoff.lifecycle import QUEUE_CHANGED, TICKET_MESSAGE, TicketDesk
from bot.protocol import (
    ClosedHow,
    MessageKind,
    Sender,
    TicketReason,
    TicketStatus,
    WidgetMessage,
    for_visitor,
    from_rasa,
    intent_payload,
    kind_of,
    payload_of,
    stored_payload,
    widget_message,
    widget_message_of,
)
from bot.gateway.limits import RateLimitedError
from bot.rasa_client import BotTimeoutError, BotUnavailableError, BotUnreachableError
from bot.rasa_servers import RasaServers
from bot.store.database import Store
from bot.store.owners import claim_conversation, conversation_owner
from bot.store.messages import (MessageRecord, NewMessage, conversation_exists, conversation_messages,
                                 holds_client_message, offered_payloads, record_messages)
from bot.store.reads import Unread, mark_seen, unread
from bot.store.tickets import (AlreadyStoredError, TicketRecord, close_ticket, get_ticket, record_visitor_message,
                               waiting_outage_tickets)
from bot.store.unanswered import unanswered_conversations, unanswered_messages, unanswered_sent_again

logger = logging.getLogger(__name__)

COMMAND_PREFIX = "/"
RETRY_SECONDS = 2.0  # between tries of a bot that cannot be reached
BUSY_RETRY_SECONDS = 5


OWNERS_KEPT = 50_000


class NotYourConversationError(Exception):
    """A widget message came with another identity than its conversation's owner (nothing was stored)."""


@dataclass(frozen=True)
class Patience:
    """How the router waits for the bot (``Settings``: busy_notice_seconds, outage_seconds,
    max_waiting_turns, start_payloads); see ``ConversationRouter._ask_bot``."""

    busy_notice_seconds: float = 3.0
    outage_seconds: float = 30.0
    max_waiting_turns: int = 300
    start_payloads: Tuple[str, ...] = ("/get_started",)
GREETING_PAYLOAD = intent_payload("greet")


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


def held_by_outage(history: List[MessageRecord], ticket_id: int) -> List[MessageRecord]:
    """The visitor messages a ``bot_unavailable`` ticket holds, oldest first: the one the bot could not
    answer (the visitor message before the ticket's notice) and every one after it. Empty when the
    conversation has no notice of that ticket."""
    def opened(record: MessageRecord) -> bool:
        deskmate = payload_of(record.payload or {})
        return record.sender == Sender.BOT.value and deskmate.get("type") == MessageKind.HANDOFF.value \
            and deskmate.get("ticket") == ticket_id
    notice = max((index for index, record in enumerate(history) if opened(record)), default=None)
    if notice is None:
        return []
    start = next((i for i in range(notice - 1, -1, -1) if history[i].sender == Sender.VISITOR.value), notice)
    return [record for record in history[start:] if record.sender == Sender.VISITOR.value]


def as_words(text: str) -> str:
    """A command-like text as plain words for NLU: the leading slashes go ("/restart" reads "restart")."""
    words = text.strip().lstrip(COMMAND_PREFIX).strip()
    # A text of slashes alone stays a symbol (never an empty message, never a command).
    return words or text.strip().replace(COMMAND_PREFIX, "\u2215")


def bot_rows(replies: Sequence[WidgetMessage]) -> List[NewMessage]:
    """The bot's replies as the rows that store them, in order (sender "bot", payload as the widget got it)."""
    return [NewMessage(Sender.BOT.value, reply["text"], stored_payload(reply)) for reply in replies]


class ConversationRouter:
    """Routes each visitor message; every piece of conversation state is read from the store."""

    def __init__(
        self, store: Store, bot: RasaServers, desk: TicketDesk, hub: Hub, limits: RateLimits,
        locks: ConversationLocks, patience: "Patience",
    ) -> None:
        self.store = store
        self.bot = bot
        self.desk = desk
        self.handoff = desk.handoff
        self.hub = hub
        self.limits = limits
        self.locks = locks
        self.patience = patience
        self.start_payloads = frozenset(patience.start_payloads)
        # Messages of this gateway taken and not yet answered, per Rasa server: a hung server fills
        # only its own conversations' share, not the others'.
        self._waiting: Dict[str, int] = {}
        self._failing_since: Optional[float] = None  # when the bot began failing (None: it answers)
        # Conversations' owners as the store has them (an owner never changes, so any copy stays right).
        self._owners: "OrderedDict[str, str]" = OrderedDict()

    async def _check_owner(self, conversation_id: str, owner: str) -> None:
        """Raise NotYourConversationError unless ``owner`` is (now) the conversation's owner."""
        known = self._owners.get(conversation_id)
        if known is None:
            known = await asyncio.to_thread(claim_conversation, self.store, conversation_id, owner, self.handoff.now())
            self._owners[conversation_id] = known
            while len(self._owners) > OWNERS_KEPT:
                self._owners.popitem(last=False)
        if known != owner:
            raise NotYourConversationError(conversation_id)

    async def history(self, conversation_id: str) -> List[MessageRecord]:
        """Everything said in a conversation, oldest first."""
        return await asyncio.to_thread(conversation_messages, self.store, conversation_id)

    async def owner(self, conversation_id: str) -> Optional[str]:
        """The conversation's owner (bot/store/owners.py), or None before its first message. Raises StoreError."""
        known = self._owners.get(conversation_id)
        if known is None:
            known = await asyncio.to_thread(conversation_owner, self.store, conversation_id)
        return known

    async def known(self, conversation_id: str) -> bool:
        """Whether the conversation has a stored message. Raises StoreError."""
        return await asyncio.to_thread(conversation_exists, self.store, conversation_id)

    async def holds(self, conversation_id: str, client_message_id: str) -> bool:
        """Whether the conversation holds the message the widget sent with ``client_message_id``.
        Raises StoreError."""
        return await asyncio.to_thread(holds_client_message, self.store, conversation_id, client_message_id)

    async def unread(self, conversation_id: str) -> Unread:
        """What came to the visitor after the newest message a widget of the conversation showed (the
        chat button's badge). Raises StoreError."""
        return await asyncio.to_thread(unread, self.store, conversation_id)

    async def mark_seen(self, conversation_id: str) -> int:
        """An open, visible widget shows the conversation as it is now; returns the newest message id
        read. Raises StoreError."""
        return await asyncio.to_thread(mark_seen, self.store, conversation_id, self.handoff.now())

    async def visitor_message(
        self, conversation_id: str, text: str, metadata: Mapping[str, Any], address: Optional[str] = None,
        owner: Optional[str] = None, client_message_id: Optional[str] = None, sender_sid: Optional[str] = None,
    ) -> List[WidgetMessage]:
        """Take one visitor message: count it against the limits, clean it, store it, route it.

        The replies (already stored) go live to every open widget of the
        conversation and are returned, as the visitor sees them. ``address``:
        the client's address for the per-address limit (None for the JSON
        API, whose callers are servers). Raises RateLimitedError before
        anything is stored (also when ``max_waiting_turns`` messages for
        this conversation's Rasa server wait in this gateway), StoreError
        when the message cannot be stored or queued (then nothing was
        accepted: the visitor must send it again). With ``owner`` (the
        widget's messages: bot/store/owners.py), the conversation must belong
        to it: checked under the conversation's lock, so a burst keeps its
        order; raises NotYourConversationError before anything is stored.
        ``client_message_id`` (the widget's id for the message): a message
        sent again that the conversation already holds is not stored twice;
        what the conversation still owes an answer (a gateway stopped mid-turn)
        is answered instead, and else nothing (no replies). ``sender_sid``: the
        widget socket it came from; once stored, the conversation's other open
        widgets get it (``Hub.echo_visitor_message``).
        """
        self.limits.message(conversation_id, address)
        server = self.bot.ring(conversation_id)[0].base_url
        if self._waiting.get(server, 0) >= self.patience.max_waiting_turns:
            raise RateLimitedError(texts.TOO_BUSY, BUSY_RETRY_SECONDS, status=503)
        text = clean_text(text)
        self._waiting[server] = self._waiting.get(server, 0) + 1
        counted = True
        try:
            async with self.locks.hold(conversation_id):
                if owner is not None:
                    await self._check_owner(conversation_id, owner)
                try:
                    routed = await self._route(conversation_id, text, metadata, client_message_id, sender_sid)
                    replies = [for_visitor(reply) for reply in routed]
                finally:
                    # Answered: no longer waiting, even while the replies go out (the visitor may send the next).
                    self._waiting[server] -= 1
                    counted = False
                for reply in replies:
                    await self.hub.send_to_visitor(conversation_id, reply)
        finally:
            if counted:
                self._waiting[server] -= 1
        return replies

    async def _route(
        self, conversation_id: str, text: str, metadata: Mapping[str, Any], client_message_id: Optional[str] = None,
        sender_sid: Optional[str] = None,
    ) -> List[WidgetMessage]:
        now = self.handoff.now()
        try:
            ticket = await asyncio.to_thread(
                record_visitor_message, self.store, conversation_id, text, now, client_message_id)
        except AlreadyStoredError:
            return await self._answer_owed(conversation_id, metadata, client_message_id)
        if sender_sid is not None:
            await self.hub.echo_visitor_message(conversation_id, text, sender_sid)
        if ticket is not None:
            back = await self._back_from_outage(conversation_id, ticket, metadata)
            if back is not None:
                return back
            await self.hub.notify_agents(TICKET_MESSAGE, {"ticket": ticket.id})
            acknowledged = self.desk.acknowledgement(ticket)
            await self._store(conversation_id, acknowledged)
            return acknowledged
        return await self._answer(conversation_id, text, metadata, message_id=client_message_id)

    async def _answer(
        self, conversation_id: str, text: str, metadata: Mapping[str, Any], message_id: Optional[str] = None,
        retry: bool = False,
    ) -> List[WidgetMessage]:
        """The bot's answer to a stored message (or, when it is down, the ticket's notice), stored
        (``message_id``, ``retry``: as for ``_ask_bot``)."""
        replies = await self._ask_bot(conversation_id, text, metadata, message_id, retry)
        if replies is None:
            visitor = await asyncio.to_thread(self.handoff.visitor, metadata)
            replies = await asyncio.to_thread(self.desk.bot_unreachable, conversation_id, visitor)
        await self._store(conversation_id, replies)
        if any(kind_of(reply) is MessageKind.HANDOFF for reply in replies):
            await self.hub.notify_agents(QUEUE_CHANGED, {})
        return replies

    async def _answer_owed(
        self, conversation_id: str, metadata: Mapping[str, Any], client_message_id: Optional[str]
    ) -> List[WidgetMessage]:
        """The bot's answers (stored) to a message sent again that nothing answered (its gateway stopped
        mid-turn; the conversation may have gone on since) and to the visitor messages after the last
        reply (none while the team has the conversation), oldest first; called under the lock."""
        owed = await asyncio.to_thread(unanswered_messages, self.store, conversation_id)
        if client_message_id is not None:
            again = await asyncio.to_thread(unanswered_sent_again, self.store, conversation_id, client_message_id)
            if again is not None and all(message.id != again.id for message in owed):
                owed.insert(0, again)
        replies: List[WidgetMessage] = []
        for message in owed:
            replies.extend(await self._answer(conversation_id, message.text, metadata,
                                              message_id=message.client_message_id, retry=True))
        return replies

    async def resume(self, since: datetime, limit: int = 500) -> int:
        """Answer the visitor messages a stopped gateway stored but never answered (sent since ``since``).

        Called once the bot is whole again after this gateway starts
        (``resume_unanswered``). Each conversation is taken under its lock and
        read again, so a message another gateway is answering right now is
        left to it. The visitor's identity token was not stored (a secret):
        these are answered as for an anonymous visitor. Returns how many
        messages were answered. Raises StoreError.
        """
        answered = 0
        for conversation_id in await asyncio.to_thread(unanswered_conversations, self.store, since, limit):
            async with self.locks.hold(conversation_id):
                for message in await asyncio.to_thread(unanswered_messages, self.store, conversation_id):
                    for reply in await self._answer(conversation_id, message.text, {},
                                                    message_id=message.client_message_id, retry=True):
                        await self.hub.send_to_visitor(conversation_id, for_visitor(reply))
                    answered += 1
        return answered

    async def _back_from_outage(
        self, conversation_id: str, ticket: TicketRecord, metadata: Mapping[str, Any]
    ) -> Optional[List[WidgetMessage]]:
        """When the ticket the visitor's message went to was opened by an outage and nobody took it:
        the bot's replies if it answers again (``_hand_back``); else None (the team keeps it)."""
        if ticket.reason != TicketReason.BOT_UNAVAILABLE.value or ticket.status != TicketStatus.OPEN.value:
            return None
        return await self._hand_back(conversation_id, ticket, metadata, quote_all=False)

    async def return_after_outage(self) -> int:
        """Give back to the bot, once it is whole again, every conversation an outage handed to the team
        that no agent has taken, and answer what they held (live to open widgets, and stored for the
        visitor's return). Called every few seconds by each gateway (bot/gateway/app.py); each
        conversation is taken under its lock and its ticket read again, so two gateways never both
        hand one back. Returns how many conversations went back. Raises StoreError."""
        tickets = await asyncio.to_thread(waiting_outage_tickets, self.store)
        if not tickets or not await self.bot.whole():
            return 0
        returned = 0
        for ticket in tickets:
            async with self.locks.hold(ticket.conversation_id):
                fresh = await asyncio.to_thread(get_ticket, self.store, ticket.id)
                if fresh is None or fresh.status != TicketStatus.OPEN.value:
                    continue
                replies = await self._hand_back(ticket.conversation_id, fresh, {}, quote_all=True)
                if replies is None:
                    continue
                for reply in replies:
                    await self.hub.send_to_visitor(ticket.conversation_id, for_visitor(reply))
                returned += 1
        return returned

    async def _hand_back(
        self, conversation_id: str, ticket: TicketRecord, metadata: Mapping[str, Any], quote_all: bool
    ) -> Optional[List[WidgetMessage]]:
        """Close an outage's unclaimed ticket and answer every message it held, oldest first: the notice
        "answering again", then each message's replies (after "You asked: ..." for an earlier message,
        and for all with ``quote_all``). None, and the ticket stays, when the bot is not whole (while
        the action server is down Rasa still answers "hello": no reason to hand back), does not answer
        the first, or an agent took the ticket meanwhile.
        """
        if not await self.bot.whole():
            return None
        held = held_by_outage(await self.history(conversation_id), ticket.id)
        if not held:
            return None
        answers: List[WidgetMessage] = []
        for index, message in enumerate(held):
            replies = await self._ask_bot(conversation_id, message.text, metadata)
            if replies is None:
                if index == 0:
                    return None
                break  # the rest stay unanswered in the history; the bot failed again
            if quote_all or index < len(held) - 1:
                answers.append(widget_message(texts.you_asked(message.text), {"type": "notice"}))
            answers += replies
        notice = widget_message(
            texts.bot_back(ticket.number), {"type": "resolved", "how": ClosedHow.HANDED_BACK.value, "ticket": ticket.id}
        )
        # The notice and the answers go in the ticket's closing transaction: a reader never sees the
        # conversation back with the bot and its held questions unanswered.
        stored = [NewMessage(Sender.SYSTEM.value, notice["text"], stored_payload(notice))]
        stored += bot_rows(answers)
        try:
            await asyncio.to_thread(
                close_ticket, self.store, ticket.id, "bot", self.handoff.now(), ClosedHow.HANDED_BACK,
                "the bot answered again", stored,
            )
        except Exception:  # noqa: BLE001 (an agent took or closed it meanwhile: the team keeps it)
            logger.info("gateway: ticket %s changed meanwhile; it stays with the team", ticket.number)
            return None
        await self.hub.notify_agents(QUEUE_CHANGED, {"ticket": ticket.id})
        return [notice, *answers]

    async def _ask_bot(
        self, conversation_id: str, text: str, metadata: Mapping[str, Any], message_id: Optional[str] = None,
        retry: bool = False,
    ) -> Optional[List[WidgetMessage]]:
        """The bot's replies; None when it is down (a person must follow up).

        ``message_id`` (the widget's id) names the message in Rasa's tracker;
        with ``retry`` (a message a stopped gateway may have sent already), a
        message the tracker holds is not processed again: its replies come back.

        Busy is not down: after ``busy_notice_seconds`` the visitor is told "one
        moment" and the answer still comes. A bot that cannot be reached is
        tried again until it has failed for ``outage_seconds``; one that fails
        on a message says so (send it again) unless it has been failing that
        long; one that hangs for ``bot_timeout_seconds`` is down. An empty
        answer becomes a request to rephrase.
        """
        # Only a verified identity travels on, as a short-lived token of the gateway's own for the bot (Rasa's
        # tracker store keeps it: it opens no visitor session); the actions check it and look the customer up.
        forwarded = self.handoff.bot_metadata(metadata)
        said = await self._for_bot(conversation_id, text)
        notice = asyncio.create_task(self._busy_notice(conversation_id))
        try:
            while True:
                try:
                    replies = from_rasa(list(await self.bot.send(conversation_id, said, forwarded,
                                                                 message_id=message_id, retry=retry)))
                    self._failing_since = None
                    break
                except BotTimeoutError as error:
                    logger.error("gateway: %s", error)
                    return None
                except BotUnavailableError as error:
                    failing_for = self._failing(error)
                    if failing_for >= self.patience.outage_seconds:
                        return None
                    if not isinstance(error, BotUnreachableError):
                        # It saw the message and failed on it: trying again would have it twice.
                        return [widget_message(texts.NOT_ANSWERED_NOW, {"type": "notice"})]
                    await asyncio.sleep(min(RETRY_SECONDS, self.patience.outage_seconds - failing_for))
        finally:
            notice.cancel()
        if not replies:
            return [widget_message(texts.NO_ANSWER, {"type": "notice"})]
        return replies

    def _failing(self, error: BotUnavailableError) -> float:
        """Note a failure of the bot; for how many seconds it has been failing."""
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
            logger.error("gateway: the bot fails: %s", error)
        return now - self._failing_since

    async def _busy_notice(self, conversation_id: str) -> None:
        """After ``busy_notice_seconds`` of waiting: "one moment", to every open widget of the conversation."""
        await asyncio.sleep(self.patience.busy_notice_seconds)
        if self._failing_since is not None:
            return  # not busy: failing (it is tried again, and the visitor told if it stays down)
        await self.hub.send_to_visitor(conversation_id, widget_message(texts.BUSY, {"type": "busy"}))

    async def _for_bot(self, conversation_id: str, text: str) -> str:
        """What Rasa receives for ``text``: a command only when the bot offered it or it starts a conversation."""
        command = text.strip()
        if not command.startswith(COMMAND_PREFIX):
            return text
        if command in self.start_payloads:
            return GREETING_PAYLOAD
        offered = await asyncio.to_thread(offered_payloads, self.store, conversation_id)
        return command if command in offered else as_words(text)

    async def _store(self, conversation_id: str, replies: List[WidgetMessage]) -> None:
        """The bot's messages of one turn, in one transaction."""
        if not replies:
            return
        await asyncio.to_thread(record_messages, self.store, conversation_id, bot_rows(replies), self.handoff.now())
