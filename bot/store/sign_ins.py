"""Failed staff sign-ins, counted per e-mail typed (an account or not) and per client address.

The gateway slows and then stops guessing from these counts (bot/gateway/
staff_auth.py); the store is shared by every gateway process, so the counts
are too. Each attempt is written *before* its password or code is checked
(``record_attempt``) and forgotten if it succeeds (``forget_attempt``): that
way parallel guesses see each other, and no more than the lock threshold can
be checked in a window however many arrive at once. A lead's unlock clears an
e-mail's (or a client address's) failures.
"""
from __future__ import annotations

from datetime import datetime
from typing import List, Tuple

from sqlalchemy import delete, func, select

from bot.store.customers import normalise_email
from bot.store.database import Store, store_errors
from bot.store.models import SignInFailure


def record_attempt(store: Store, email: str, address: str, now: datetime) -> int:
    """Count one sign-in attempt as failed until ``forget_attempt`` says otherwise; its id.

    Raises StoreUnavailableError.
    """
    row = SignInFailure(email=normalise_email(email)[:320], address=address[:64], at=now)
    with store_errors("record a sign-in attempt"), store.session() as session, session.begin():
        session.add(row)
        session.flush()
        return int(row.id)


def forget_attempt(store: Store, attempt_id: int) -> None:
    """The attempt succeeded (or was never checked): it is not a failure. Raises StoreUnavailableError."""
    with store_errors("forget a sign-in attempt"), store.session() as session, session.begin():
        session.execute(delete(SignInFailure).where(SignInFailure.id == attempt_id))


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


def locked_addresses(store: Store, since: datetime, threshold: int) -> List[Tuple[str, int, datetime]]:
    """Client addresses with at least ``threshold`` failures since ``since``: (address, failures, latest), most first."""
    query = (
        select(SignInFailure.address, func.count(), func.max(SignInFailure.at))
        .where(SignInFailure.at >= since)
        .group_by(SignInFailure.address)
        .having(func.count() >= threshold)
        .order_by(func.count().desc())
    )
    with store_errors("list locked sign-in addresses"), store.session() as session:
        return [(address, int(count), latest) for address, count, latest in session.execute(query)]


def clear_failures(store: Store, email: str) -> int:
    """Forget an e-mail's failed sign-ins (a lead's unlock); how many. Raises StoreUnavailableError."""
    with store_errors("unlock a sign-in"), store.session() as session, session.begin():
        return int(session.execute(delete(SignInFailure).where(SignInFailure.email == normalise_email(email))).rowcount or 0)


def clear_address_failures(store: Store, address: str) -> int:
    """Forget the failed sign-ins from one client address (a lead's unlock); how many. Raises StoreUnavailableError."""
    with store_errors("unlock a sign-in address"), store.session() as session, session.begin():
        return int(session.execute(delete(SignInFailure).where(SignInFailure.address == address[:64])).rowcount or 0)
