"""Visitor messages stored but never answered: the gateway that took them stopped mid-turn.

Every visitor message is stored before it is routed (bot/gateway/router.py),
and the bot's replies after it; a conversation whose newest message is the
visitor's, with no ticket open (then the team has it), is owed an answer. A
gateway looks for these when it starts (``ConversationRouter.resume``).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, List, Optional

from sqlalchemy import func, select
from sqlalchemy.sql.expression import Exists

from bot.protocol import Sender, TicketStatus
from bot.store.database import Store, store_errors
from bot.store.messages import MessageRecord, message_record
from bot.store.models import Message, Ticket


def _has_open_ticket(conversation_id: Any) -> Exists:
    return (
        select(Ticket.id)
        .where(Ticket.conversation_id == conversation_id, Ticket.status != TicketStatus.RESOLVED.value)
        .exists()
    )


def unanswered_conversations(store: Store, since: datetime, limit: int = 500) -> List[str]:
    """Conversations whose newest message is a visitor's, sent at or after ``since``, with no open ticket.

    Oldest first, at most ``limit``. Raises ValueError for a naive ``since``
    or a limit below 1, StoreUnavailableError when the database cannot be read.
    """
    if since.utcoffset() is None:
        raise ValueError("since must be timezone-aware")
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    newest = select(func.max(Message.id)).where(Message.created_at >= since).group_by(Message.conversation_id)
    query = (
        select(Message.conversation_id)
        .where(Message.id.in_(newest), Message.sender == Sender.VISITOR.value,
               ~_has_open_ticket(Message.conversation_id))
        .order_by(Message.id)
        .limit(limit)
    )
    with store_errors("find unanswered conversations"), store.session() as session:
        return list(session.scalars(query))


def unanswered_messages(store: Store, conversation_id: str, limit: int = 20) -> List[MessageRecord]:
    """The visitor's messages after the last bot, agent or system message, oldest first (at most the
    newest ``limit``); empty while a ticket is open. Raises StoreUnavailableError."""
    answered = select(func.max(Message.id)).where(
        Message.conversation_id == conversation_id, Message.sender != Sender.VISITOR.value
    ).scalar_subquery()
    query = (
        select(Message)
        .where(Message.conversation_id == conversation_id, Message.id > func.coalesce(answered, 0))
        .order_by(Message.id.desc())
        .limit(limit)
    )
    with store_errors("read a conversation's unanswered messages"), store.session() as session:
        if session.scalar(select(_has_open_ticket(conversation_id))):
            return []
        return [message_record(row) for row in reversed(list(session.scalars(query)))]


def unanswered_sent_again(store: Store, conversation_id: str, client_message_id: str) -> Optional[MessageRecord]:
    """The visitor message with the widget's ``client_message_id`` when nothing answered it: no bot,
    agent or system message came after it before the visitor's next message (replies follow their
    message under the conversation's lock), and no ticket is open; else None. Raises StoreUnavailableError."""
    with store_errors("read a message sent again"), store.session() as session:
        row = session.scalars(select(Message).where(Message.conversation_id == conversation_id,
                                                    Message.client_message_id == client_message_id)).first()
        if row is None or session.scalar(select(_has_open_ticket(conversation_id))):
            return None
        following = session.scalars(
            select(Message.sender).where(Message.conversation_id == conversation_id, Message.id > row.id)
            .order_by(Message.id).limit(1)
        ).first()
        return message_record(row) if following in (None, Sender.VISITOR.value) else None
