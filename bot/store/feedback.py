"""What visitors say of the help they got: verdicts on answers (helpful or not) and 1-5 ratings (CSAT)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import List, Optional

from sqlalchemy import select

from bot.store.database import Store, store_errors
from bot.store.models import Feedback


@dataclass(frozen=True)
class FeedbackRecord:
    """A stored verdict (``article_id``, ``helpful``) or rating (``csat``, 1-5): a plain copy of the row."""

    id: int
    conversation_id: str
    article_id: Optional[str]
    helpful: Optional[bool]
    csat: Optional[int]
    created_at: datetime


def _record(row: Feedback) -> FeedbackRecord:
    return FeedbackRecord(
        id=row.id, conversation_id=row.conversation_id, article_id=row.article_id,
        helpful=row.helpful, csat=row.csat, created_at=row.created_at,
    )


def _insert(store: Store, action: str, row: Feedback) -> FeedbackRecord:
    with store_errors(action), store.session() as session, session.begin():
        session.add(row)
        session.flush()
        return _record(row)


def record_feedback(
    store: Store, conversation_id: str, article_id: Optional[str], helpful: bool, now: datetime
) -> FeedbackRecord:
    """Store one helpful / not-helpful verdict given at ``now`` (aware); raises StoreUnavailableError."""
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    row = Feedback(conversation_id=conversation_id, article_id=article_id, helpful=helpful, created_at=now)
    return _insert(store, f"record feedback for {conversation_id}", row)


def record_csat(store: Store, conversation_id: str, stars: int, now: datetime) -> FeedbackRecord:
    """Store a visitor's 1-5 rating given at ``now`` (aware); raises ValueError or StoreError."""
    if isinstance(stars, bool) or not isinstance(stars, int) or not 1 <= stars <= 5:
        raise ValueError(f"a rating is a whole number from 1 to 5, got {stars!r}")
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return _insert(store, f"record a rating for {conversation_id}", Feedback(conversation_id=conversation_id, csat=stars, created_at=now))


def feedback_for(store: Store, conversation_id: str) -> List[FeedbackRecord]:
    """Every verdict and rating given in one conversation, oldest first; raises StoreUnavailableError."""
    query = select(Feedback).where(Feedback.conversation_id == conversation_id).order_by(Feedback.id)
    with store_errors(f"read feedback of {conversation_id}"), store.session() as session:
        return [_record(row) for row in session.scalars(query)]
