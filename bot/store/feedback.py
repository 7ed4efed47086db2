"""Recording what visitors say of the answers they got."""
from __future__ import annotations

import logging
from typing import List, Optional

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from bot.store.database import StoreUnavailableError, session_factory
from bot.store.models import Feedback

logger = logging.getLogger(__name__)


def record_feedback(database_url: str, conversation_id: str, article_id: Optional[str], helpful: bool) -> Feedback:
    """Store one helpful / not-helpful verdict; raises StoreUnavailableError."""
    try:
        with session_factory(database_url)() as session, session.begin():
            row = Feedback(conversation_id=conversation_id, article_id=article_id, helpful=helpful)
            session.add(row)
        return row
    except SQLAlchemyError as error:
        logger.error("store: could not record feedback for %s: %s", conversation_id, error.__class__.__name__)
        raise StoreUnavailableError("feedback could not be stored") from error


def feedback_for(database_url: str, conversation_id: str) -> List[Feedback]:
    """Every verdict given in one conversation, oldest first."""
    with session_factory(database_url)() as session:
        query = select(Feedback).where(Feedback.conversation_id == conversation_id).order_by(Feedback.id)
        return list(session.scalars(query))
