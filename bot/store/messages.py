"""Every message of a gateway conversation, stored before it is acted on.

A message's ``id`` grows with every message written to the database and is
the order of a conversation: ``conversation_messages(..., after_id=N)``
returns what was said after message N (a reconnecting widget catching up).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from sqlalchemy import select

from bot.store.customers import EMAIL_PATTERN, normalise_email
from bot.store.database import session_factory, store_errors
from bot.store.models import MESSAGE_ARTICLE_ID_CHARS, MESSAGE_KIND_CHARS, MESSAGE_SENDERS, Message

MAX_CONVERSATION_ID_CHARS = 255


@dataclass(frozen=True)
class MessageRecord:
    """A stored message (a plain copy: no database session behind it).

    ``author`` is the agent's e-mail for agent messages, else None;
    ``payload`` is the machine-readable part (quick replies, the
    ``deskmate`` payload), or None.
    """

    id: int
    conversation_id: str
    sender: str
    author: Optional[str]
    text: str
    payload: Optional[Dict[str, Any]]
    created_at: datetime


def message_record(row: Message) -> MessageRecord:
    """A plain, frozen copy of a message row (the payload is copied too)."""
    return MessageRecord(
        id=row.id,
        conversation_id=row.conversation_id,
        sender=row.sender,
        author=row.author,
        text=row.text,
        payload=json.loads(json.dumps(row.payload)) if row.payload is not None else None,
        created_at=row.created_at,
    )


def _check_conversation_id(conversation_id: str) -> None:
    if not isinstance(conversation_id, str) or not conversation_id.strip():
        raise ValueError("conversation_id is empty")
    if len(conversation_id) > MAX_CONVERSATION_ID_CHARS:
        raise ValueError(f"conversation_id is longer than {MAX_CONVERSATION_ID_CHARS} characters")


def _checked_payload(payload: Optional[Mapping[str, Any]]) -> Optional[Dict[str, Any]]:
    """A JSON-safe copy of ``payload``; ValueError when it is not a JSON object."""
    if payload is None:
        return None
    if not isinstance(payload, Mapping):
        raise ValueError(f"payload must be a JSON object (a mapping), got {type(payload).__name__}")
    try:
        return json.loads(json.dumps(dict(payload), allow_nan=False))
    except (TypeError, ValueError) as error:
        raise ValueError(f"payload must be JSON-serialisable: {error}") from error


def _deskmate_string(payload: Optional[Mapping[str, Any]], key: str, limit: int) -> Optional[str]:
    metadata = payload.get("metadata") if isinstance(payload, Mapping) else None
    deskmate = metadata.get("deskmate") if isinstance(metadata, Mapping) else None
    value = deskmate.get(key) if isinstance(deskmate, Mapping) else None
    return value[:limit] if isinstance(value, str) else None


def payload_columns(payload: Optional[Mapping[str, Any]]) -> Dict[str, Optional[str]]:
    """``kind`` and ``article_id`` of a message row: payload.metadata.deskmate.type / .article_id.

    Each is the JSON string cut to its column's length, or None (no deskmate payload, not a string),
    exactly as migration 0005 backfilled the rows stored before it. The single place they are
    derived: every write of a message goes through ``new_message_row``.
    """
    return {
        "kind": _deskmate_string(payload, "type", MESSAGE_KIND_CHARS),
        "article_id": _deskmate_string(payload, "article_id", MESSAGE_ARTICLE_ID_CHARS),
    }


def _checked_author(sender: str, author: Optional[str]) -> Optional[str]:
    """The stored form of ``author``: required (an e-mail) for agent messages, optional otherwise."""
    if author is None:
        if sender == "agent":
            raise ValueError("an agent message needs its author (the agent's e-mail)")
        return None
    author = normalise_email(author)
    if not EMAIL_PATTERN.match(author):
        raise ValueError(f"author must be an e-mail address, got {author!r}")
    return author


def record_message(
    url: str,
    conversation_id: str,
    sender: str,
    text: str,
    now: datetime,
    payload: Optional[Mapping[str, Any]] = None,
    author: Optional[str] = None,
) -> MessageRecord:
    """Store one message of the conversation and return it with its id.

    ``sender`` is one of visitor, bot, agent, system; ``text`` may be empty
    for a payload-only message. Raises ValueError on invalid input (before
    anything reaches the database), StoreUnavailableError when the database
    cannot be written.
    """
    row = new_message_row(conversation_id, sender, text, now, payload, author)
    with store_errors("record a message"), session_factory(url)() as session, session.begin():
        session.add(row)
        session.flush()
        return message_record(row)


def new_message_row(
    conversation_id: str, sender: str, text: str, now: datetime,
    payload: Optional[Mapping[str, Any]] = None, author: Optional[str] = None,
) -> Message:
    """A checked, unsaved message row (raises ValueError on bad input)."""
    _check_conversation_id(conversation_id)
    if sender not in MESSAGE_SENDERS:
        raise ValueError(f"sender {sender!r} is not one of {', '.join(MESSAGE_SENDERS)}")
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, got {type(text).__name__}")
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    checked = _checked_payload(payload)
    return Message(conversation_id=conversation_id, sender=sender, author=_checked_author(sender, author),
                   text=text, payload=checked, created_at=now, **payload_columns(checked))


def record_messages(
    url: str, conversation_id: str, messages: Sequence[Tuple[str, str, Optional[Mapping[str, Any]]]], now: datetime
) -> List[MessageRecord]:
    """Store several (sender, text, payload) messages of one turn in one transaction, in order."""
    rows = [new_message_row(conversation_id, sender, text, now, payload) for sender, text, payload in messages]
    if not rows:
        return []
    with store_errors("record messages"), session_factory(url)() as session, session.begin():
        session.add_all(rows)
        session.flush()
        return [message_record(row) for row in rows]


def conversation_messages(
    url: str, conversation_id: str, after_id: Optional[int] = None, limit: int = 1000
) -> List[MessageRecord]:
    """The conversation's messages, oldest first: at most ``limit``, only those after ``after_id`` if given.

    Raises ValueError for a limit below 1, StoreUnavailableError when the database cannot be read.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    query = select(Message).where(Message.conversation_id == conversation_id)
    if after_id is not None:
        query = query.where(Message.id > after_id)
    query = query.order_by(Message.id).limit(limit)
    with store_errors("read a conversation's messages"), session_factory(url)() as session:
        return [message_record(row) for row in session.scalars(query)]


def get_message(url: str, message_id: int) -> Optional[MessageRecord]:
    """Message ``message_id``, or None. Raises StoreUnavailableError when the database cannot be read."""
    with store_errors("read a message"), session_factory(url)() as session:
        row = session.get(Message, message_id)
        return message_record(row) if row is not None else None
