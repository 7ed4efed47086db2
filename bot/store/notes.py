"""Internal notes on a ticket: for staff only.

A note is not a message: it lives in ``ticket_notes``, never in ``messages``, so nothing that reaches
a visitor (the live widget, its history, the e-mailed replies, the reports' conversation figures) can
carry it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import List

from sqlalchemy import select

from bot.store.customers import EMAIL_PATTERN, normalise_email
from bot.store.database import Store, store_errors
from bot.store.models import Ticket, TicketNote
from bot.store.tickets import TicketNotFoundError

MAX_NOTE_CHARS = 4000


@dataclass(frozen=True)
class NoteRecord:
    """A stored note: ``author`` is the staff member's e-mail; ``created_at`` UTC."""

    id: int
    ticket_id: int
    author: str
    text: str
    created_at: datetime


def _record(row: TicketNote) -> NoteRecord:
    return NoteRecord(row.id, row.ticket_id, row.author, row.text, row.created_at)


def add_note(store: Store, ticket_id: int, author: str, text: str, now: datetime) -> NoteRecord:
    """Add ``text`` (1 to MAX_NOTE_CHARS characters once stripped) as ``author``'s note on the ticket (open
    or resolved). Raises ValueError, TicketNotFoundError, StoreUnavailableError."""
    text = text.strip() if isinstance(text, str) else ""
    if not text or len(text) > MAX_NOTE_CHARS:
        raise ValueError(f"a note is 1 to {MAX_NOTE_CHARS} characters")
    author = normalise_email(author)
    if not EMAIL_PATTERN.match(author):
        raise ValueError(f"author must be an e-mail address, got {author!r}")
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    with store_errors("add a note"), store.session() as session, session.begin():
        if session.get(Ticket, ticket_id) is None:
            raise TicketNotFoundError(f"there is no ticket #{ticket_id}")
        row = TicketNote(ticket_id=ticket_id, author=author, text=text, created_at=now)
        session.add(row)
        session.flush()
        return _record(row)


def notes_for(store: Store, ticket_id: int, limit: int = 500) -> List[NoteRecord]:
    """The ticket's notes, oldest first, at most ``limit``. Raises StoreUnavailableError."""
    query = select(TicketNote).where(TicketNote.ticket_id == ticket_id).order_by(TicketNote.id).limit(limit)
    with store_errors("read a ticket's notes"), store.session() as session:
        return [_record(row) for row in session.scalars(query)]
