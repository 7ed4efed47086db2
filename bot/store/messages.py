"""Every message of a gateway conversation, stored before it is acted on.

A message's ``id`` grows with every message written to the database and is
the order of a conversation: ``conversation_messages(..., after_id=N)``
returns what was said after message N (a reconnecting widget catching up).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Dict, FrozenSet, List, Mapping, Optional, Sequence

from sqlalchemy import func, select

from bot.protocol import MessageKind, Sender, payload_of
from bot.store.customers import EMAIL_PATTERN, normalise_email
from bot.store.database import Store, store_errors
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
    # The widget's id for a visitor message (bot.protocol.CLIENT_MESSAGE_ID), else None.
    client_message_id: Optional[str] = None


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
        client_message_id=row.client_message_id,
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
    value = payload_of(payload).get(key) if isinstance(payload, Mapping) else None
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
        if sender == Sender.AGENT.value:
            raise ValueError("an agent message needs its author (the agent's e-mail)")
        return None
    author = normalise_email(author)
    if not EMAIL_PATTERN.match(author):
        raise ValueError(f"author must be an e-mail address, got {author!r}")
    return author


def record_message(
    store: Store,
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
    with store_errors("record a message"), store.session() as session, session.begin():
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


@dataclass(frozen=True)
class NewMessage:
    """A message to store: ``sender`` (a ``Sender`` value), ``text``, its widget-format ``payload``
    (``{"quick_replies": [...], "metadata": {"deskmate": {...}}}``) and, for agents, ``author`` (an e-mail)."""

    sender: str
    text: str
    payload: Optional[Mapping[str, Any]] = None
    author: Optional[str] = None

    def row(self, conversation_id: str, now: datetime) -> Message:
        """The checked, unsaved row (raises ValueError on bad input)."""
        return new_message_row(conversation_id, self.sender, self.text, now, self.payload, self.author)


def record_messages(store: Store, conversation_id: str, messages: Sequence[NewMessage], now: datetime) -> List[MessageRecord]:
    """Store several messages of one turn in one transaction, in order; raises ValueError, StoreUnavailableError."""
    rows = [message.row(conversation_id, now) for message in messages]
    if not rows:
        return []
    with store_errors("record messages"), store.session() as session, session.begin():
        session.add_all(rows)
        session.flush()
        return [message_record(row) for row in rows]


def conversation_messages(
    store: Store, conversation_id: str, after_id: Optional[int] = None, limit: int = 1000
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
    with store_errors("read a conversation's messages"), store.session() as session:
        return [message_record(row) for row in session.scalars(query)]


def conversation_exists(store: Store, conversation_id: str) -> bool:
    """Whether any message of ``conversation_id`` is stored (one indexed lookup).
    Raises StoreUnavailableError when the database cannot be read."""
    query = select(Message.id).where(Message.conversation_id == conversation_id).limit(1)
    with store_errors("look up a conversation"), store.session() as session:
        return session.scalars(query).first() is not None


def holds_client_message(store: Store, conversation_id: str, client_message_id: str) -> bool:
    """Whether ``conversation_id`` holds the visitor message the widget sent with ``client_message_id``
    (one indexed lookup). Raises StoreUnavailableError when the database cannot be read."""
    query = select(Message.id).where(Message.conversation_id == conversation_id,
                                     Message.client_message_id == client_message_id).limit(1)
    with store_errors("look up a message sent again"), store.session() as session:
        return session.scalars(query).first() is not None


def get_message(store: Store, message_id: int) -> Optional[MessageRecord]:
    """Message ``message_id``, or None. Raises StoreUnavailableError when the database cannot be read."""
    with store_errors("read a message"), store.session() as session:
        row = session.get(Message, message_id)
        return message_record(row) if row is not None else None


def offered_payloads(store: Store, conversation_id: str) -> FrozenSet[str]:
    """Every button payload (``/intent{...}``) the bot offered in the conversation (its quick replies).

    Raises StoreUnavailableError when the database cannot be read.
    """
    query = select(Message.payload).where(
        Message.conversation_id == conversation_id, Message.sender == Sender.BOT.value, Message.payload.is_not(None)
    )
    offered = set()
    with store_errors("read the buttons offered in a conversation"), store.session() as session:
        for payload in session.scalars(query):
            for reply in (payload or {}).get("quick_replies") or []:
                if isinstance(reply, dict) and isinstance(reply.get("payload"), str):
                    offered.add(reply["payload"])
    return frozenset(offered)


def handoff_promise(store: Store, conversation_id: str, ticket_id: int) -> Optional[str]:
    """The ``promise`` of the handoff message that named ticket ``ticket_id`` in its conversation (e.g.
    "priority"), or None when there is none. Raises StoreUnavailableError."""
    query = (
        select(Message.payload)
        .where(Message.conversation_id == conversation_id, Message.kind == MessageKind.HANDOFF.value)
        .order_by(Message.id.desc())
    )
    with store_errors("read a ticket's promise"), store.session() as session:
        for payload in session.scalars(query):
            deskmate = payload_of(payload) if isinstance(payload, Mapping) else {}
            if deskmate.get("ticket") == ticket_id and isinstance(deskmate.get("promise"), str):
                return str(deskmate["promise"])
    return None
