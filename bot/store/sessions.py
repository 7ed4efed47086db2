"""Staff sessions the server controls: the cookie only carries a random token; this table says if it still counts.

A session ends at sign-out, when the account is disabled, its role or
password changes (bot/store/staff.py ends them in the same transaction), or
at its idle or absolute time-out. Only the token's SHA-256 is stored, so the
table alone opens no session.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable, Optional, Set, Tuple

from sqlalchemy import select, update

from bot.store.database import Store, store_errors
from bot.store.models import Staff, StaffSession
from bot.store.staff import StaffRecord, staff_record

# last_seen_at is refreshed at most this often (a write per request would be a write per poll).
TOUCH_EVERY = timedelta(seconds=30)


@dataclass(frozen=True)
class SessionRecord:
    """A stored session (``id`` is the token's hash), and whom it belongs to."""

    id: str
    staff_id: int
    created_at: datetime
    last_seen_at: datetime
    address: Optional[str]
    ended_at: Optional[datetime]
    end_reason: Optional[str]


def session_key(token: str) -> str:
    """The stored id of a cookie's session token (SHA-256, hex)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _record(row: StaffSession) -> SessionRecord:
    return SessionRecord(row.id, row.staff_id, row.created_at, row.last_seen_at, row.address, row.ended_at, row.end_reason)


def start_session(store: Store, staff_id: int, address: Optional[str], user_agent: Optional[str], now: datetime) -> str:
    """A new session for the staff member; the token for the cookie (a new one at every sign-in)."""
    token = secrets.token_urlsafe(32)
    row = StaffSession(id=session_key(token), staff_id=staff_id, created_at=now, last_seen_at=now,
                       address=(address or "")[:64] or None, user_agent=(user_agent or "")[:300] or None)
    with store_errors("start a staff session"), store.session() as session, session.begin():
        session.add(row)
    return token


def _still_valid(row: StaffSession, staff: Staff, now: datetime, idle: timedelta, absolute: timedelta) -> Optional[str]:
    """Why the session no longer counts (None: it does)."""
    if row.ended_at is not None:
        return row.end_reason or "ended"
    if staff.disabled:
        return "account disabled"
    if now - row.last_seen_at > idle:
        return "idle time-out"
    if now - row.created_at > absolute:
        return "absolute time-out"
    return None


def current_session(
    store: Store, token: str, now: datetime, idle: timedelta, absolute: timedelta
) -> Optional[Tuple[SessionRecord, StaffRecord]]:
    """The session of ``token`` and its staff member as they are now (role included), if it still counts.

    A session past a time-out (or of a disabled account) is ended here and
    None returned. Raises StoreUnavailableError.
    """
    with store_errors("read a staff session"), store.session() as session, session.begin():
        row = session.get(StaffSession, session_key(token))
        if row is None:
            return None
        staff = session.get(Staff, row.staff_id)
        reason = "account removed" if staff is None else _still_valid(row, staff, now, idle, absolute)
        if reason is not None:
            if row.ended_at is None:
                row.ended_at, row.end_reason = now, reason
            return None
        if now - row.last_seen_at >= TOUCH_EVERY:
            row.last_seen_at = now
        session.flush()
        return _record(row), staff_record(staff)


def end_session(store: Store, token: str, reason: str, now: datetime) -> None:
    """End one session (sign-out); nothing happens for an unknown or ended one. Raises StoreUnavailableError."""
    with store_errors("end a staff session"), store.session() as session, session.begin():
        session.execute(
            update(StaffSession)
            .where(StaffSession.id == session_key(token), StaffSession.ended_at.is_(None))
            .values(ended_at=now, end_reason=reason)
        )


def live_sessions(store: Store, tokens: Iterable[str], now: datetime, idle: timedelta, absolute: timedelta) -> Set[str]:
    """Which of ``tokens`` still open a session (for cutting off sockets whose session ended)."""
    keys = {session_key(token): token for token in tokens}
    if not keys:
        return set()
    query = (
        select(StaffSession, Staff)
        .join(Staff, Staff.id == StaffSession.staff_id)
        .where(StaffSession.id.in_(list(keys)))
    )
    with store_errors("check staff sessions"), store.session() as session:
        return {keys[row.id] for row, staff in session.execute(query) if _still_valid(row, staff, now, idle, absolute) is None}
