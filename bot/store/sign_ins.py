"""Failed staff sign-ins, counted per e-mail typed (an account or not) and per client address.

The gateway slows and then stops guessing from these counts (bot/gateway/
staff_auth.py); the store is shared by every gateway process, so the counts
are too. A lead's unlock clears an e-mail's failures.
"""
from __future__ import annotations

from datetime import datetime
from typing import List, Tuple

from sqlalchemy import delete, func, select

from bot.store.customers import normalise_email
from bot.store.database import Store, store_errors
from bot.store.models import SignInFailure


def record_failure(store: Store, email: str, address: str, now: datetime) -> None:
    """Count one failed sign-in. Raises StoreUnavailableError."""
    row = SignInFailure(email=normalise_email(email)[:320], address=address[:64], at=now)
    with store_errors("record a failed sign-in"), store.session() as session, session.begin():
        session.add(row)


def failures_since(store: Store, email: str, address: str, since: datetime) -> Tuple[int, int, datetime | None]:
    """(failures for the e-mail, failures from the address, the e-mail's latest failure) since ``since``."""
    email = normalise_email(email)
    with store_errors("count failed sign-ins"), store.session() as session:
        by_email, latest = session.execute(
            select(func.count(), func.max(SignInFailure.at)).where(SignInFailure.email == email, SignInFailure.at >= since)
        ).one()
        by_address = session.scalar(
            select(func.count()).where(SignInFailure.address == address, SignInFailure.at >= since)
        )
    return int(by_email or 0), int(by_address or 0), latest


def locked_emails(store: Store, since: datetime, threshold: int) -> List[Tuple[str, int, datetime]]:
    """E-mails with at least ``threshold`` failures since ``since``: (e-mail, failures, latest), most first."""
    query = (
        select(SignInFailure.email, func.count(), func.max(SignInFailure.at))
        .where(SignInFailure.at >= since)
        .group_by(SignInFailure.email)
        .having(func.count() >= threshold)
        .order_by(func.count().desc())
    )
    with store_errors("list locked sign-ins"), store.session() as session:
        return [(email, int(count), latest) for email, count, latest in session.execute(query)]


def clear_failures(store: Store, email: str) -> int:
    """Forget an e-mail's failed sign-ins (a lead's unlock); how many. Raises StoreUnavailableError."""
    with store_errors("unlock a sign-in"), store.session() as session, session.begin():
        return int(session.execute(delete(SignInFailure).where(SignInFailure.email == normalise_email(email))).rowcount or 0)
