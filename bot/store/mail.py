"""E-mails to send and e-mail replies taken in: the store side of the mail channel (bot/mail/).

An outgoing e-mail is a row that one gateway at a time claims (a conditional
UPDATE: of two gateways asking at once, one gets it), sends, and marks sent;
a failure puts it back with a later ``next_attempt_at`` until its attempts
run out (``failed``, shown in the agents' inbox). A claim whose gateway
stopped mid-send is taken again once its lease has passed: delivery is at
least once, and exactly once unless a gateway dies between the relay's
"250 OK" and the store's commit.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import List, Optional, Sequence

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.protocol import MessageKind, Sender, TicketStatus
from bot.store.database import Store, store_errors
from bot.store.messages import MessageRecord, message_record, new_message_row
from bot.store.models import ConversationRead, InboundMail, Message, OutgoingMail, Ticket, TicketEvent

ERROR_CHARS = 500
# What of a conversation goes by e-mail: the team's words and the resolution.
MAILED_KINDS = (MessageKind.AGENT_MESSAGE.value, MessageKind.RESOLVED.value)


@dataclass(frozen=True)
class OutgoingMailRecord:
    """One e-mail to send (a plain copy of its row); ``kind`` "conversation" or "prepared"."""

    id: int
    kind: str
    ticket_id: Optional[int]
    to_address: str
    subject: Optional[str]
    body_text: Optional[str]
    body_html: Optional[str]
    covers_message_id: Optional[int]
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: Optional[str]
    created_at: datetime
    sent_at: Optional[datetime]


def _record(row: OutgoingMail) -> OutgoingMailRecord:
    return OutgoingMailRecord(
        id=row.id, kind=row.kind, ticket_id=row.ticket_id, to_address=row.to_address, subject=row.subject,
        body_text=row.body_text, body_html=row.body_html, covers_message_id=row.covers_message_id,
        status=row.status, attempts=row.attempts, next_attempt_at=row.next_attempt_at,
        last_error=row.last_error, created_at=row.created_at, sent_at=row.sent_at,
    )


def schedule_conversation_mail(session: Session, ticket: Ticket, due: datetime, now: datetime) -> None:
    """Within the caller's transaction (which holds the ticket): the ticket's visitor gets an e-mail at
    ``due`` of what the team said that no widget showed by then. Nothing when the ticket has no contact
    address. When one is already waiting, it keeps its due time and will carry this reply too."""
    if not ticket.contact_email:
        return
    pending = session.scalars(
        select(OutgoingMail).where(
            OutgoingMail.ticket_id == ticket.id, OutgoingMail.kind == "conversation", OutgoingMail.status == "pending"
        )
    ).first()
    if pending is not None:
        # Its due time stays: the first reply no widget showed goes out on time, with the later ones.
        pending.to_address = ticket.contact_email
        return
    session.add(OutgoingMail(
        kind="conversation", ticket_id=ticket.id, to_address=ticket.contact_email, status="pending",
        attempts=0, next_attempt_at=due, created_at=now,
    ))


def prepared_mail_row(
    to_address: str, subject: str, body_text: str, now: datetime,
    body_html: Optional[str] = None, ticket_id: Optional[int] = None,
) -> OutgoingMail:
    """The pending row of a prepared e-mail, for a caller that adds it in its own transaction (so that
    queueing it and recording that it was queued commit together). Raises ValueError (empty address or
    subject)."""
    if not to_address.strip() or not subject.strip():
        raise ValueError("an e-mail needs an address and a subject")
    return OutgoingMail(
        kind="prepared", ticket_id=ticket_id, to_address=to_address.strip(), subject=subject[:300],
        body_text=body_text, body_html=body_html, status="pending", attempts=0, next_attempt_at=now,
        created_at=now,
    )


def claim_due_mail(store: Store, now: datetime, lease: timedelta, limit: int = 20) -> List[OutgoingMailRecord]:
    """Claim up to ``limit`` e-mails due by ``now`` (or whose sender's lease passed) for this process.

    Each is claimed by a conditional UPDATE, so of several gateways asking at once exactly one gets
    it; its ``attempts`` counts this try. Raises StoreUnavailableError.
    """
    claimable = or_(
        and_(OutgoingMail.status == "pending", OutgoingMail.next_attempt_at <= now),
        and_(OutgoingMail.status == "sending", OutgoingMail.claimed_until < now),
    )
    claimed: List[OutgoingMailRecord] = []
    with store_errors("claim e-mails to send"):
        with store.session() as session:
            ids = list(session.scalars(
                select(OutgoingMail.id).where(claimable).order_by(OutgoingMail.next_attempt_at).limit(limit)
            ))
        for mail_id in ids:
            with store.session() as session, session.begin():
                result = session.execute(
                    update(OutgoingMail)
                    .where(OutgoingMail.id == mail_id, claimable)
                    .values(status="sending", claimed_until=now + lease, attempts=OutgoingMail.attempts + 1)
                    .execution_options(synchronize_session=False)
                )
                if result.rowcount == 1:
                    claimed.append(_record(session.get(OutgoingMail, mail_id)))
    return claimed


def unseen_team_messages(store: Store, mail: OutgoingMailRecord) -> List[MessageRecord]:
    """The team's messages in a conversation e-mail's conversation that no widget has shown and no
    earlier e-mail carried, oldest first. Raises StoreUnavailableError."""
    with store_errors("read what a visitor has not seen"), store.session() as session:
        ticket = session.get(Ticket, mail.ticket_id)
        if ticket is None:
            return []
        conversation = ticket.conversation_id
        seen = session.scalar(
            select(ConversationRead.seen_message_id).where(ConversationRead.conversation_id == conversation)
        ) or 0
        mailed = session.scalar(
            select(func.max(OutgoingMail.covers_message_id))
            .join(Ticket, Ticket.id == OutgoingMail.ticket_id)
            .where(Ticket.conversation_id == conversation, OutgoingMail.status == "sent")
        ) or 0
        rows = session.scalars(
            select(Message)
            .where(Message.conversation_id == conversation, Message.id > max(seen, mailed),
                   Message.kind.in_(MAILED_KINDS))
            .order_by(Message.id)
        )
        return [message_record(row) for row in rows]


def mark_mail_sent(store: Store, mail_id: int, now: datetime, covers_message_id: Optional[int] = None) -> None:
    """The relay accepted the e-mail. Raises StoreUnavailableError."""
    _finish(store, mail_id, status="sent", sent_at=now, covers_message_id=covers_message_id, claimed_until=None)


def mark_mail_cancelled(store: Store, mail_id: int, reason: str) -> None:
    """Nothing to send after all (e.g. a widget showed the replies in time). Raises StoreUnavailableError."""
    _finish(store, mail_id, status="cancelled", last_error=reason[:ERROR_CHARS], claimed_until=None)


def mark_mail_retry(store: Store, mail_id: int, error: str, next_attempt_at: datetime) -> None:
    """Sending failed; try again at ``next_attempt_at``. Raises StoreUnavailableError."""
    _finish(store, mail_id, status="pending", last_error=error[:ERROR_CHARS], next_attempt_at=next_attempt_at,
            claimed_until=None)


def mark_mail_failed(store: Store, mail_id: int, error: str) -> None:
    """Sending failed for the last time: the inbox shows it. Raises StoreUnavailableError."""
    _finish(store, mail_id, status="failed", last_error=error[:ERROR_CHARS], claimed_until=None)


def _finish(store: Store, mail_id: int, **values: object) -> None:
    with store_errors("record an e-mail's outcome"), store.session() as session, session.begin():
        session.execute(update(OutgoingMail).where(OutgoingMail.id == mail_id).values(**values))


def ticket_mail(store: Store, ticket_id: int, limit: int = 5) -> List[OutgoingMailRecord]:
    """A ticket's newest e-mails, newest first (the inbox shows their state). Raises StoreUnavailableError."""
    with store_errors("read a ticket's e-mails"), store.session() as session:
        rows = session.scalars(
            select(OutgoingMail).where(OutgoingMail.ticket_id == ticket_id).order_by(OutgoingMail.id.desc()).limit(limit)
        )
        return [_record(row) for row in rows]


@dataclass(frozen=True)
class InboundReply:
    """A visitor's e-mail reply as taken in: the stored message and the ticket it joined (maybe reopened)."""

    message: MessageRecord
    ticket_id: int
    reopened: bool


def take_inbound_reply(
    store: Store, message_id_header: str, ticket_id: int, text: str, now: datetime
) -> Optional[InboundReply]:
    """Store a visitor's e-mail reply to ticket ``ticket_id`` in its conversation, in one transaction.

    A resolved ticket is opened again (to its agent, or the queue), unless the conversation has another
    open ticket: the reply then joins that one. Returns None when this Message-ID was taken in before
    (a redelivery) or the ticket does not exist. Raises StoreUnavailableError (the sender should try
    again: nothing was kept).
    """
    with store_errors("take in an e-mail reply"):
        try:
            with store.session() as session, session.begin():
                ticket = session.scalars(select(Ticket).where(Ticket.id == ticket_id).with_for_update()).first()
                if ticket is None:
                    return None
                session.add(InboundMail(message_id_header=message_id_header[:998], ticket_id=ticket_id, received_at=now))
                session.flush()
                reopened = False
                if ticket.status == TicketStatus.RESOLVED.value:
                    current = session.scalars(
                        select(Ticket).where(Ticket.conversation_id == ticket.conversation_id,
                                             Ticket.status != TicketStatus.RESOLVED.value)
                    ).first()
                    if current is not None:
                        ticket = current
                    else:
                        ticket.status = TicketStatus.ASSIGNED.value if ticket.assignee else TicketStatus.OPEN.value
                        ticket.resolved_at = None
                        session.add(TicketEvent(ticket_id=ticket.id, kind="reopened", actor="visitor", at=now,
                                                detail={"by": "email"}))
                        reopened = True
                payload = {"metadata": {"deskmate": {"type": MessageKind.EMAIL.value, "ticket": ticket.id}}}
                row = new_message_row(ticket.conversation_id, Sender.VISITOR.value, text, now, payload)
                session.add(row)
                session.flush()
                return InboundReply(message_record(row), ticket.id, reopened)
        except IntegrityError:
            with store.session() as session:
                known = session.scalar(select(InboundMail.id).where(InboundMail.message_id_header == message_id_header[:998]))
            if known is not None:
                return None  # the same e-mail was taken in before (maybe by another gateway just now)
            raise
