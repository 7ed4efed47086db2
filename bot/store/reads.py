"""How far a visitor has read their conversation, and what came after it (the widget's unread badge)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Optional

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import Select

from bot.protocol import Sender
from bot.store.database import Store, store_errors
from bot.store.models import ConversationRead, Message


@dataclass(frozen=True)
class Unread:
    """Messages to the visitor after the newest one a widget of the conversation showed.

    ``count``: bot, agent and system messages after it (0 when the conversation was never shown);
    ``team_replied``: whether an agent wrote one of them.
    """

    count: int = 0
    team_replied: bool = False


def _mark(conversation_id: str) -> Select:
    """The conversation's read mark (``seen_message_id``), one row or none."""
    return select(ConversationRead.seen_message_id).where(ConversationRead.conversation_id == conversation_id)


def mark_seen(store: Store, conversation_id: str, now: datetime) -> int:
    """Record that an open, visible widget shows the conversation as it is now: its newest message is read.

    Returns the newest message id read (0 for a conversation without messages). The mark never moves
    back (two gateways may record at once). Raises StoreUnavailableError.
    """
    newest = select(func.coalesce(func.max(Message.id), 0)).where(Message.conversation_id == conversation_id)
    with store_errors("record what a visitor has read"):
        # Most marks change nothing (the widget says so again): read first, so they take no write lock.
        with store.session() as session:
            seen, current = int(session.scalar(newest) or 0), session.scalar(_mark(conversation_id))
        if current is not None and current >= seen:
            return seen
        for attempt in range(2):
            try:
                with store.session() as session, session.begin():
                    seen = int(session.scalar(newest) or 0)
                    row = session.get(ConversationRead, conversation_id)
                    if row is None:
                        session.add(ConversationRead(conversation_id=conversation_id, seen_message_id=seen, seen_at=now))
                    elif seen > row.seen_message_id:
                        row.seen_message_id, row.seen_at = seen, now
                    return seen
            except IntegrityError:
                if attempt:
                    raise
                # Another gateway inserted the row first: update it.
    raise AssertionError("unreachable")


def unread(store: Store, conversation_id: str) -> Unread:
    """What the visitor has not seen yet (``Unread``); raises StoreUnavailableError."""
    with store_errors("count a visitor's unread messages"), store.session() as session:
        seen = session.scalar(_mark(conversation_id))
        if seen is None:
            return Unread()
        rows = session.execute(
            select(Message.sender, func.count())
            .where(Message.conversation_id == conversation_id, Message.id > seen, Message.sender != Sender.VISITOR.value)
            .group_by(Message.sender)
        ).all()
    counts = {sender: int(count) for sender, count in rows}
    return Unread(count=sum(counts.values()), team_replied=counts.get(Sender.AGENT.value, 0) > 0)


def read_up_to(store: Store, conversation_id: str) -> Optional[int]:
    """The newest message id a widget of the conversation has shown, or None when none has said so.
    Raises StoreUnavailableError."""
    with store_errors("read how far a visitor has read"), store.session() as session:
        return session.scalar(_mark(conversation_id))
