"""Tables of Deskmate's store."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import Boolean, Column, DateTime, Integer, SmallInteger, String
from sqlalchemy.orm import declarative_base

Base = declarative_base()


def utcnow() -> datetime:
    """Now, timezone-aware, in UTC."""
    return datetime.now(timezone.utc)


class Feedback(Base):
    """A visitor's verdict on one answer (helpful or not), and later a CSAT score."""

    __tablename__ = "feedback"

    id = Column(Integer, primary_key=True)
    conversation_id = Column(String(255), nullable=False, index=True)
    article_id = Column(String(100), nullable=True, index=True)
    helpful = Column(Boolean, nullable=True)
    csat = Column(SmallInteger, nullable=True)
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)

    def __repr__(self) -> str:
        return f"Feedback({self.conversation_id!r}, {self.article_id!r}, helpful={self.helpful})"


