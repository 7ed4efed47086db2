"""What visitors say of the help they got: verdicts on answers (helpful or not) and 1-5 ratings (CSAT).

A verdict counts only for an article the bot answered in that conversation,
once per answer (a later click changes it); a rating only after the bot asked
for it when a ticket closed, once per ticket (a later rating changes it). So
the report's helpful ratio and CSAT count what visitors really said about
what they really got, however often a button is pressed or a payload typed.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Dict, List, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.protocol import MessageKind, Sender, TicketStatus
from bot.store.database import Store, StoreIntegrityError, store_errors
from bot.store.models import Feedback, Message, Ticket


@dataclass(frozen=True)
class FeedbackRecord:
    """A stored verdict (``article_id``, ``helpful``, ``answer_message_id``) or rating (``csat`` 1-5,
    ``ticket_id``): a plain copy of the row."""

    id: int
    conversation_id: str
    article_id: Optional[str]
    helpful: Optional[bool]
    csat: Optional[int]
    created_at: datetime
    answer_message_id: Optional[int] = None
    ticket_id: Optional[int] = None


def _record(row: Feedback) -> FeedbackRecord:
    return FeedbackRecord(
        id=row.id, conversation_id=row.conversation_id, article_id=row.article_id, helpful=row.helpful,
        csat=row.csat, created_at=row.created_at, answer_message_id=row.answer_message_id, ticket_id=row.ticket_id,
    )


def _aware(now: datetime) -> None:
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")


def _upsert(store: Store, action: str, key: Dict[str, Any], values: Dict[str, Any],
            find: "Any") -> Optional[FeedbackRecord]:
    """Insert the row for ``key`` or change the one there (two tabs at once: the unique index decides)."""
    for attempt in range(2):
        try:
            with store_errors(action), store.session() as session, session.begin():
                found = find(session)
                if found is None:
                    return None
                row = session.scalars(select(Feedback).filter_by(**{**key, **found}).with_for_update()).first()
                if row is None:
                    row = Feedback(**{**key, **found})
                    session.add(row)
                for name, value in values.items():
                    setattr(row, name, value)
                session.flush()
                return _record(row)
        except StoreIntegrityError:
            if attempt:  # a second refusal is no race: report it
                raise
    return None  # pragma: no cover (the loop returns or raises)


def record_feedback(
    store: Store, conversation_id: str, article_id: Optional[str], helpful: bool, now: datetime
) -> Optional[FeedbackRecord]:
    """The visitor's verdict on the latest answer of ``article_id`` in the conversation, given at ``now``.

    None (nothing stored) when the bot answered no such article in this
    conversation; a second verdict on the same answer replaces the first.
    Raises ValueError for a naive ``now``, StoreUnavailableError.
    """
    _aware(now)
    if not article_id:
        return None

    def answer(session: Session) -> Optional[Dict[str, Any]]:
        answer_id = session.scalar(
            select(Message.id)
            .where(Message.conversation_id == conversation_id, Message.sender == Sender.BOT.value,
                   Message.kind == MessageKind.ARTICLE.value, Message.article_id == article_id)
            .order_by(Message.id.desc())
            .limit(1)
        )
        return {"answer_message_id": answer_id} if answer_id is not None else None

    return _upsert(
        store, f"record feedback for {conversation_id}",
        {"conversation_id": conversation_id, "article_id": article_id},
        {"helpful": helpful, "created_at": now}, answer,
    )


def record_csat(store: Store, conversation_id: str, ticket_id: Any, stars: Any, now: datetime) -> Optional[FeedbackRecord]:
    """The visitor's 1-5 rating of ticket ``ticket_id``'s help, given at ``now``.

    None (nothing stored) when the bot did not ask this conversation to rate
    that ticket, or the ticket was opened again and is not resolved now; a
    second rating of the same ticket replaces the first.
    Raises ValueError for stars that are not a whole number 1-5 or a naive
    ``now``, StoreUnavailableError.
    """
    if isinstance(stars, bool) or not isinstance(stars, int) or not 1 <= stars <= 5:
        raise ValueError(f"a rating is a whole number from 1 to 5, got {stars!r}")
    _aware(now)
    if isinstance(ticket_id, bool) or not isinstance(ticket_id, int) or not 0 < ticket_id < 2**63:
        return None

    def asked(session: Session) -> Optional[Dict[str, Any]]:
        request = session.scalar(
            select(Message.id)
            .where(Message.conversation_id == conversation_id, Message.kind == MessageKind.RATING_REQUEST.value,
                   Message.payload[("metadata", "deskmate", "ticket")].as_integer() == ticket_id)
            .limit(1)
        )
        if request is None:
            return None
        # A ticket opened again since is not rated until it is resolved again (its new request asks).
        status = session.scalar(select(Ticket.status).where(Ticket.id == ticket_id, Ticket.conversation_id == conversation_id))
        return {"ticket_id": ticket_id} if status == TicketStatus.RESOLVED.value else None

    return _upsert(
        store, f"record a rating for {conversation_id}", {"conversation_id": conversation_id},
        {"csat": stars, "created_at": now}, asked,
    )


def feedback_for(store: Store, conversation_id: str) -> List[FeedbackRecord]:
    """Every verdict and rating given in one conversation, oldest first; raises StoreUnavailableError."""
    query = select(Feedback).where(Feedback.conversation_id == conversation_id).order_by(Feedback.id)
    with store_errors(f"read feedback of {conversation_id}"), store.session() as session:
        return [_record(row) for row in session.scalars(query)]
