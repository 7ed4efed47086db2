"""Saved replies: texts support leads keep for agents to insert into a reply and edit before sending."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import List, Tuple

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.store.customers import normalise_email
from bot.store.database import Store, StoreError, store_errors
from bot.store.models import SavedReply

MAX_TITLE_CHARS = 100
MAX_TEXT_CHARS = 4000


class SavedReplyNotFoundError(StoreError, LookupError):
    """No saved reply has that id."""


class DuplicateTitleError(StoreError):
    """Another saved reply has that title (titles are unique, ignoring case and spacing)."""


@dataclass(frozen=True)
class SavedReplyRecord:
    """A saved reply: ``title`` (unique), ``text``, who changed it last (an e-mail) and when (UTC)."""

    id: int
    title: str
    text: str
    updated_by: str
    updated_at: datetime


def _record(row: SavedReply) -> SavedReplyRecord:
    return SavedReplyRecord(row.id, row.title, row.text, row.updated_by, row.updated_at)


def _checked(title: str, text: str) -> Tuple[str, str]:
    title = " ".join(title.split()) if isinstance(title, str) else ""
    text = text.strip() if isinstance(text, str) else ""
    if not title or len(title) > MAX_TITLE_CHARS:
        raise ValueError(f"a title is 1 to {MAX_TITLE_CHARS} characters")
    if not text or len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"a saved reply's text is 1 to {MAX_TEXT_CHARS} characters")
    return title, text


def _refuse_duplicate(session: Session, title: str, own_id: int = 0) -> None:
    clash = [r for r in session.execute(select(SavedReply.id, SavedReply.title)).all()
             if r.title.casefold() == title.casefold() and r.id != own_id]
    if clash:
        raise DuplicateTitleError(f"there is a saved reply titled {title!r} already")


def saved_replies(store: Store) -> List[SavedReplyRecord]:
    """Every saved reply, by title. Raises StoreUnavailableError."""
    with store_errors("read the saved replies"), store.session() as session:
        return [_record(row) for row in session.scalars(select(SavedReply).order_by(SavedReply.title))]


def save_reply(store: Store, title: str, text: str, by: str, now: datetime, reply_id: int = 0) -> SavedReplyRecord:
    """Create a saved reply (``reply_id`` 0) or change saved reply ``reply_id``; ``by`` is the lead's e-mail.

    Raises ValueError (empty or too long), DuplicateTitleError, SavedReplyNotFoundError,
    StoreUnavailableError.
    """
    title, text = _checked(title, text)
    by = normalise_email(by)
    with store_errors("save a saved reply"):
        try:
            with store.session() as session, session.begin():
                _refuse_duplicate(session, title, reply_id)
                if reply_id:
                    row = session.get(SavedReply, reply_id)
                    if row is None:
                        raise SavedReplyNotFoundError(f"there is no saved reply {reply_id}")
                    row.title, row.text, row.updated_by, row.updated_at = title, text, by, now
                else:
                    row = SavedReply(title=title, text=text, updated_by=by, updated_at=now)
                    session.add(row)
                session.flush()
                return _record(row)
        except IntegrityError as error:  # two leads saving the same title at once
            raise DuplicateTitleError(f"there is a saved reply titled {title!r} already") from error


def delete_saved_reply(store: Store, reply_id: int) -> None:
    """Delete saved reply ``reply_id``. Raises SavedReplyNotFoundError, StoreUnavailableError."""
    with store_errors("delete a saved reply"), store.session() as session, session.begin():
        row = session.get(SavedReply, reply_id)
        if row is None:
            raise SavedReplyNotFoundError(f"there is no saved reply {reply_id}")
        session.delete(row)
