"""Alerts to the on-call people (``oncall_alerts``): one per ticket per interval, claimed and retried.

The unique (ticket, slot) pair is the claim of an interval: whichever gateway notes it first makes the
row, the others find it there (``note_alert``). Sending is leased: a gateway takes a row that is due
(``claim_due_alerts``: one conditional UPDATE per row, so two gateways never both take it), sends it,
and records the outcome (``alert_sent``, ``alert_failed``); a row whose gateway died mid-send is
taken again once its lease has passed. Times are the caller's clock.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import List, Optional, Sequence

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from bot.protocol import TicketStatus
from bot.store.database import Store, store_errors
from bot.store.mail import prepared_mail_row
from bot.store.models import OnCallAlert, Ticket

ERROR_CHARS = 300


@dataclass(frozen=True)
class AlertRecord:
    """An alert and what it is about: the ticket's number, priority, plan, conversation and due time.

    ``slot``: whole on-call intervals between the ticket's opening and the alert; ``reason``:
    no_agent_online, due_soon or overdue; ``attempts``: deliveries tried so far.
    """

    id: int
    ticket_id: int
    slot: int
    reason: str
    created_at: datetime
    attempts: int
    next_try_at: datetime
    mailed_at: Optional[datetime]
    posted_at: Optional[datetime]
    sent_at: Optional[datetime]
    failed_at: Optional[datetime]
    last_error: Optional[str]
    priority: str
    plan: str
    conversation_id: str
    sla_due_at: datetime
    ticket_created_at: datetime


def _record(alert: OnCallAlert, ticket: Ticket) -> AlertRecord:
    return AlertRecord(
        id=alert.id, ticket_id=alert.ticket_id, slot=alert.slot, reason=alert.reason, created_at=alert.created_at,
        attempts=alert.attempts, next_try_at=alert.next_try_at, mailed_at=alert.mailed_at,
        posted_at=alert.posted_at, sent_at=alert.sent_at,
        failed_at=alert.failed_at, last_error=alert.last_error, priority=ticket.priority, plan=ticket.plan,
        conversation_id=ticket.conversation_id, sla_due_at=ticket.sla_due_at, ticket_created_at=ticket.created_at,
    )


def note_alert(store: Store, ticket_id: int, slot: int, reason: str, now: datetime) -> bool:
    """Claim interval ``slot`` of ticket ``ticket_id`` for an alert (due at once); False when it already has
    one (another round or gateway noted it first). Raises StoreUnavailableError."""
    noted = select(OnCallAlert.id).where(OnCallAlert.ticket_id == ticket_id, OnCallAlert.slot == slot)
    # Every round asks again while the danger lasts: read first, so that asking takes no write lock.
    with store_errors("read an on-call alert"), store.session() as session:
        if session.scalar(noted) is not None:
            return False
    try:
        with store_errors("note an on-call alert"), store.session() as session, session.begin():
            if session.scalar(noted) is not None:
                return False
            session.add(OnCallAlert(ticket_id=ticket_id, slot=slot, reason=reason, created_at=now, attempts=0,
                                    next_try_at=now))
            session.flush()
            return True
    except IntegrityError:
        return False  # another gateway inserted it between our read and our write


def _due() -> object:
    return OnCallAlert.sent_at.is_(None) & OnCallAlert.failed_at.is_(None)


def claim_due_alerts(store: Store, gateway_id: str, now: datetime, lease: timedelta, limit: int = 50) -> List[AlertRecord]:
    """Take the alerts due for sending at ``now`` (not sent, not given up, next try reached, nobody's lease
    running, their ticket still unanswered) for gateway ``gateway_id`` until ``now + lease``; the ones
    taken. Raises StoreUnavailableError."""
    # An alert whose ticket got its first reply (or was resolved) meanwhile is not sent any more.
    candidates = (
        select(OnCallAlert.id)
        .join(Ticket, Ticket.id == OnCallAlert.ticket_id)
        .where(Ticket.status != TicketStatus.RESOLVED.value, Ticket.first_agent_reply_at.is_(None))
        .where(_due(), OnCallAlert.next_try_at <= now,
               or_(OnCallAlert.claimed_until.is_(None), OnCallAlert.claimed_until <= now))
        .order_by(OnCallAlert.next_try_at, OnCallAlert.id).limit(limit)
    )
    taken: List[AlertRecord] = []
    with store_errors("claim on-call alerts"):
        with store.session() as session:
            ids = list(session.scalars(candidates))
        for alert_id in ids:
            with store.session() as session, session.begin():
                claimed = session.execute(
                    update(OnCallAlert)
                    .where(OnCallAlert.id == alert_id, _due(),
                           or_(OnCallAlert.claimed_until.is_(None), OnCallAlert.claimed_until <= now))
                    .values(claimed_by=gateway_id, claimed_until=now + lease)
                    .execution_options(synchronize_session=False)
                ).rowcount
                if claimed == 1:
                    alert, ticket = session.execute(
                        select(OnCallAlert, Ticket).join(Ticket, Ticket.id == OnCallAlert.ticket_id)
                        .where(OnCallAlert.id == alert_id)
                    ).one()
                    taken.append(_record(alert, ticket))
    return taken


def _finish(store: Store, alert_id: int, gateway_id: str, action: str, **values: object) -> bool:
    """Update an alert this gateway holds the lease of, and release it; False when the lease was lost."""
    with store_errors(action), store.session() as session, session.begin():
        changed = session.execute(
            update(OnCallAlert).where(OnCallAlert.id == alert_id, OnCallAlert.claimed_by == gateway_id)
            .values(claimed_by=None, claimed_until=None, **values)
            .execution_options(synchronize_session=False)
        ).rowcount
    return bool(changed)


@dataclass(frozen=True)
class PreparedMail:
    """One e-mail of an alert: the address, the subject (at most 300 characters) and the plain text."""

    to: str
    subject: str
    text: str


def queue_alert_mail(store: Store, alert_id: int, gateway_id: str, mails: Sequence[PreparedMail], now: datetime) -> bool:
    """Queue the alert's e-mails for the outbound mail and note it mailed, in one transaction, only while
    gateway ``gateway_id`` holds the alert and nobody mailed it yet: a gateway whose lease ran out
    mid-send (a pause, a slow store) can't queue the same alert twice. Whether this call queued them.
    Raises ValueError (an empty address or subject), StoreUnavailableError."""
    rows = [prepared_mail_row(mail.to, mail.subject, mail.text, now) for mail in mails]
    with store_errors("queue an alert's e-mails"), store.session() as session, session.begin():
        taken = session.execute(
            update(OnCallAlert)
            .where(OnCallAlert.id == alert_id, OnCallAlert.claimed_by == gateway_id, OnCallAlert.mailed_at.is_(None))
            .values(mailed_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if taken != 1:
            return False
        session.add_all(rows)
    return True


def alert_posted(store: Store, alert_id: int, now: datetime) -> None:
    """The webhook took the alert (never POSTed again for this alert). Raises StoreUnavailableError."""
    with store_errors("note an alert's webhook"), store.session() as session, session.begin():
        session.execute(update(OnCallAlert).where(OnCallAlert.id == alert_id).values(posted_at=now)
                        .execution_options(synchronize_session=False))


def alert_sent(store: Store, alert_id: int, gateway_id: str, attempts: int, now: datetime) -> bool:
    """The alert went out (after ``attempts`` tries in all); False when this gateway no longer held it.
    Raises StoreUnavailableError."""
    return _finish(store, alert_id, gateway_id, "note an alert sent", sent_at=now, attempts=attempts, last_error=None)


def alert_failed(
    store: Store, alert_id: int, gateway_id: str, attempts: int, error: str, next_try_at: Optional[datetime],
    now: datetime,
) -> bool:
    """A delivery failed (``attempts`` tries in all, ``error`` why): tried again from ``next_try_at``, or given
    up (``next_try_at`` None). False when this gateway no longer held it. Raises StoreUnavailableError."""
    values: dict = {"attempts": attempts, "last_error": error[:ERROR_CHARS]}
    if next_try_at is None:
        values["failed_at"] = now
    else:
        values["next_try_at"] = next_try_at
    return _finish(store, alert_id, gateway_id, "note an alert that failed", **values)


def alerts_for_ticket(store: Store, ticket_id: int) -> List[AlertRecord]:
    """Every alert of the ticket, oldest interval first. Raises StoreUnavailableError."""
    query = (
        select(OnCallAlert, Ticket).join(Ticket, Ticket.id == OnCallAlert.ticket_id)
        .where(OnCallAlert.ticket_id == ticket_id).order_by(OnCallAlert.slot)
    )
    with store_errors("list a ticket's alerts"), store.session() as session:
        return [_record(alert, ticket) for alert, ticket in session.execute(query)]
