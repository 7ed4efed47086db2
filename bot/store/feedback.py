"""Recording what visitors say of the answers they got."""
from __future__ import annotations

import logging
from typing import List, Optional

from sqlalchemy import select

from bot.store.database import session_factory, store_errors
from bot.store.models import Feedback

logger = logging.getLogger(__name__)


def record_feedback(database_url: str, conversation_id: str, article_id: Optional[str], helpful: bool) -> Feedback:
    """Store one helpful / not-helpful verdict; raises StoreUnavailableError."""
    with store_errors(f"record feedback for {conversation_id}"):
        with session_factory(database_url)() as session, session.begin():
            row = Feedback(conversation_id=conversation_id, article_id=article_id, helpful=helpful)
            session.add(row)
        return row


def feedback_for(database_url: str, conversation_id: str) -> List[Feedback]:
    """Every verdict given in one conversation, oldest first; raises StoreUnavailableError."""
    with store_errors(f"read feedback of {conversation_id}"), session_factory(database_url)() as session:
        query = select(Feedback).where(Feedback.conversation_id == conversation_id).order_by(Feedback.id)
        return list(session.scalars(query))


def record_csat(database_url: str, conversation_id: str, stars: int) -> Feedback:
    """Store a visitor's 1-5 rating of the help they got; raises ValueError or StoreError."""
    if isinstance(stars, bool) or not isinstance(stars, int) or not 1 <= stars <= 5:
        raise ValueError(f"a rating is a whole number from 1 to 5, got {stars!r}")
    with store_errors(f"record a rating for {conversation_id}"):
        with session_factory(database_url)() as session, session.begin():
            row = Feedback(conversation_id=conversation_id, csat=stars)
            session.add(row)
        return row
