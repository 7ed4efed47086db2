"""What support leads decided about the messages the bot missed (one decision per message).

A lead adds a message to an article's phrasings or to an intent's examples,
marks it as a topic that needs a new article, or dismisses it. Decided
messages leave the leads' inbox (bot/reports/misses.py); the "needs a new
article" ones are listed in the report.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import List, Optional

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.protocol import InboxAction, Sender, values
from bot.store.customers import EMAIL_PATTERN, normalise_email
from bot.store.database import Store, StoreError, StoreIntegrityError, store_errors
from bot.store.models import INBOX_ACTIONS, InboxDecision, Message
from bot.store.period import Moment, in_period, period_bounds

logger = logging.getLogger(__name__)


# Actions that name what the message was added to (an article id or an intent name).
TARGETED_ACTIONS = values([InboxAction.ARTICLE, InboxAction.INTENT])
MAX_TARGET_CHARS = 100


class MessageNotFoundError(StoreError, LookupError):
    """No stored message has that id."""


class AlreadyDecidedError(StoreError):
    """The message already has a decision: one per message."""


@dataclass(frozen=True)
class DecisionRecord:
    """A stored decision (a plain copy: no database session behind it).

    ``target`` is the article id or intent name for "article" / "intent",
    else None; ``text`` is the phrasing as the lead wrote it.
    """

    id: int
    message_id: int
    action: str
    target: Optional[str]
    text: str
    decided_by: str
    decided_at: datetime


def decision_record(row: InboxDecision) -> DecisionRecord:
    """A plain, frozen copy of a decision row."""
    return DecisionRecord(
        id=row.id, message_id=row.message_id, action=row.action, target=row.target,
        text=row.text, decided_by=row.decided_by, decided_at=row.decided_at,
    )


def _checked_target(action: str, target: Optional[str]) -> Optional[str]:
    target = (target or "").strip() or None
    if action in TARGETED_ACTIONS:
        if target is None:
            raise ValueError(f"a decision {action!r} needs its target (the {action} it was added to)")
        if len(target) > MAX_TARGET_CHARS:
            raise ValueError(f"target is longer than {MAX_TARGET_CHARS} characters")
    elif target is not None:
        raise ValueError(f"a decision {action!r} has no target, got {target!r}")
    return target


def record_decision(
    store: Store, message_id: int, action: str, target: Optional[str], text: str, decided_by: str, now: datetime
) -> DecisionRecord:
    """Store a lead's decision on a visitor's message.

    ``action`` is one of INBOX_ACTIONS; ``target`` is required for "article"
    and "intent" and must be empty otherwise; ``decided_by`` is the lead's
    e-mail. Raises ValueError on invalid input or when the message is not a
    visitor's, MessageNotFoundError, AlreadyDecidedError (also when another
    lead decided it a moment before), StoreUnavailableError.
    """
    if action not in INBOX_ACTIONS:
        raise ValueError(f"action {action!r} is not one of {', '.join(INBOX_ACTIONS)}")
    target = _checked_target(action, target)
    if not isinstance(text, str) or not text.strip():
        raise ValueError("text is empty")
    decided_by = normalise_email(decided_by)
    if not EMAIL_PATTERN.match(decided_by):
        raise ValueError(f"decided_by must be an e-mail address, got {decided_by!r}")
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    row = InboxDecision(message_id=message_id, action=action, target=target, text=text.strip(),
                        decided_by=decided_by, decided_at=now)
    with store_errors("record an inbox decision"):
        try:
            with store.session() as session, session.begin():
                message = session.get(Message, message_id)
                if message is None:
                    raise MessageNotFoundError(f"there is no message {message_id}")
                if message.sender != Sender.VISITOR.value:
                    raise ValueError(f"message {message_id} is not a visitor's message")
                if session.scalar(select(InboxDecision.id).where(InboxDecision.message_id == message_id)):
                    raise AlreadyDecidedError(f"message {message_id} is already decided")
                session.add(row)
                session.flush()
                record = decision_record(row)
        except IntegrityError as error:
            # Two leads deciding at once: the unique message_id refuses the second.
            if decision_for(store, message_id) is not None:
                raise AlreadyDecidedError(f"message {message_id} is already decided") from error
            raise StoreIntegrityError(f"the decision could not be stored: {error.orig}") from error
    logger.info("store: message %s decided %s by %s", message_id, action, decided_by)
    return record


def decision_for(store: Store, message_id: int) -> Optional[DecisionRecord]:
    """The decision on message ``message_id``, or None."""
    query = select(InboxDecision).where(InboxDecision.message_id == message_id)
    with store_errors("read an inbox decision"), store.session() as session:
        row = session.scalars(query).first()
        return decision_record(row) if row is not None else None


def decisions(
    store: Store, action: Optional[str] = None,
    since: Optional[Moment] = None, until: Optional[Moment] = None, limit: int = 1000,
) -> List[DecisionRecord]:
    """Decisions (only ``action``'s if given) taken in the period, newest first, at most ``limit``.

    ``since`` / ``until``: see ``period_bounds`` (dates are whole UTC days, ``until`` included).
    """
    if action is not None and action not in INBOX_ACTIONS:
        raise ValueError(f"action {action!r} is not one of {', '.join(INBOX_ACTIONS)}")
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    start, end = period_bounds(since, until)
    query = select(InboxDecision).where(*in_period(InboxDecision.decided_at, start, end))
    if action is not None:
        query = query.where(InboxDecision.action == action)
    query = query.order_by(InboxDecision.decided_at.desc(), InboxDecision.id.desc()).limit(limit)
    with store_errors("read inbox decisions"), store.session() as session:
        return [decision_record(row) for row in session.scalars(query)]


def new_article_requests(store: Store, since: Optional[Moment] = None, until: Optional[Moment] = None) -> List[DecisionRecord]:
    """The messages leads marked "needs a new article" in the period, newest first (for the report)."""
    return decisions(store, InboxAction.NEW_ARTICLE.value, since, until, limit=10_000)
