"""Human handoff tickets and the events of their lives.

A conversation has at most one ticket that is not resolved: the database
enforces it (a partial unique index), and ``open_ticket`` returns the
existing one instead of opening a second. Priority and the first-reply due
time are the caller's (from the support policy, bot/handoff/policy.py).
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from sqlalchemy import case, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.protocol import CLIENT_MESSAGE_ID, ClosedHow, Sender, TicketReason, TicketStatus, values
from bot.store.customers import normalise_email
from bot.store.database import Store, StoreError, StoreIntegrityError, store_errors
from bot.store.mail import schedule_conversation_mail
from bot.store.messages import MessageRecord, NewMessage, message_record, new_message_row
from bot.store.models import TICKET_PRIORITIES, TICKET_STATUSES, Ticket, TicketEvent

logger = logging.getLogger(__name__)

TICKET_REASONS = values(TicketReason)
ACTOR_PATTERN = re.compile(r"^(bot|visitor|agent:\S+)$")


class TicketNotFoundError(StoreError, LookupError):
    """No ticket has that number."""


class TicketStateError(StoreError):
    """The ticket is not in a state that allows this change (e.g. it is already resolved)."""


class ChangedHandsError(TicketStateError):
    """The ticket is a colleague's (``assignee``, an e-mail), and the agent did not knowingly act on it:
    a reply that would take it without Take over's undo, or a resolution started when it was someone
    else's (or nobody's). Nothing was stored or sent (409)."""

    def __init__(self, ticket_id: int, assignee: str, what: str) -> None:
        super().__init__(
            f"ticket #{ticket_id} is claimed by {assignee}: {what} was not done; take it over first if it "
            "should be yours"
        )
        self.ticket_id = ticket_id
        self.assignee = assignee


def _check_aware(name: str, value: datetime) -> None:
    if value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value!r}")


def _check_actor(actor: str) -> None:
    if not ACTOR_PATTERN.match(actor):
        raise ValueError(f"actor must be 'bot', 'visitor' or 'agent:<email>', got {actor!r}")


def _check_json(name: str, value: Any) -> None:
    try:
        json.dumps(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be JSON-serialisable: {error}") from error


@dataclass(frozen=True)
class TicketRequest:
    """What is needed to open a ticket.

    ``plan`` is the customer's plan at this moment ("anonymous" for a
    visitor nobody identified); ``priority`` and ``sla_due_at`` come from the
    support policy. ``handover`` is what the agent sees first, as JSON: by
    convention ``transcript`` (list of {"from", "text", "at"}), ``customer``
    (a summary, or null), ``reason``, ``intents`` (guesses with confidences)
    and ``articles`` (ids shown). Raises ValueError on an invalid field.
    """

    conversation_id: str
    plan: str
    priority: str
    reason: str
    sla_due_at: datetime
    customer_id: Optional[int] = None
    handover: Mapping[str, Any] = field(default_factory=dict)
    actor: str = "bot"
    # Where the team's replies are e-mailed when the visitor has left (a signed-in customer's address).
    contact_email: Optional[str] = None

    def __post_init__(self) -> None:
        if not self.conversation_id.strip():
            raise ValueError("conversation_id is empty")
        if not self.plan.strip():
            raise ValueError("plan is empty (use 'anonymous' for an unidentified visitor)")
        if self.priority not in TICKET_PRIORITIES:
            raise ValueError(f"priority {self.priority!r} is not one of {', '.join(TICKET_PRIORITIES)}")
        if self.reason not in TICKET_REASONS:
            raise ValueError(f"reason {self.reason!r} is not one of {', '.join(TICKET_REASONS)}")
        _check_aware("sla_due_at", self.sla_due_at)
        _check_actor(self.actor)
        _check_json("handover", dict(self.handover))


@dataclass(frozen=True)
class TicketRecord:
    """A stored ticket (a plain copy: no database session behind it). ``id`` is the public number."""

    id: int
    conversation_id: str
    customer_id: Optional[int]
    plan: str
    priority: str
    reason: str
    status: str
    assignee: Optional[str]
    created_at: datetime
    first_agent_reply_at: Optional[datetime]
    resolved_at: Optional[datetime]
    sla_due_at: datetime
    handover: Dict[str, Any]
    # When the visitor was told the due time is about to pass (``claim_due_notice``), or None.
    due_notice_at: Optional[datetime] = None
    contact_email: Optional[str] = None

    @property
    def number(self) -> str:
        """The ticket number as shown to people, e.g. "#42"."""
        return f"#{self.id}"

    @property
    def is_open(self) -> bool:
        """Whether the ticket still awaits or has an agent (not resolved)."""
        return self.status != TicketStatus.RESOLVED.value


@dataclass(frozen=True)
class OpenedTicket:
    """The conversation's open ticket, and whether this call created it."""

    ticket: TicketRecord
    created: bool


@dataclass(frozen=True)
class TicketEventRecord:
    """One recorded change of a ticket."""

    id: int
    ticket_id: int
    kind: str
    actor: str
    at: datetime
    detail: Optional[Dict[str, Any]]


def ticket_record(row: Ticket) -> TicketRecord:
    """A plain, frozen copy of a ticket row."""
    return TicketRecord(
        id=row.id,
        conversation_id=row.conversation_id,
        customer_id=row.customer_id,
        plan=row.plan,
        priority=row.priority,
        reason=row.reason,
        status=row.status,
        assignee=row.assignee,
        created_at=row.created_at,
        first_agent_reply_at=row.first_agent_reply_at,
        resolved_at=row.resolved_at,
        sla_due_at=row.sla_due_at,
        handover=json.loads(json.dumps(row.handover)),
        due_notice_at=row.due_notice_at,
        contact_email=row.contact_email,
    )


def _event_record(row: TicketEvent) -> TicketEventRecord:
    return TicketEventRecord(
        id=row.id, ticket_id=row.ticket_id, kind=row.kind, actor=row.actor, at=row.at, detail=row.detail
    )


def _open_row(session: Session, conversation_id: str) -> Optional[Ticket]:
    query = select(Ticket).where(Ticket.conversation_id == conversation_id, Ticket.status != TicketStatus.RESOLVED.value)
    return session.scalars(query).first()


class AlreadyStoredError(StoreError):
    """The widget sent a message again (same ``client_id``) that the conversation already holds."""


def record_visitor_message(
    store: Store, conversation_id: str, text: str, now: datetime, client_message_id: Optional[str] = None
) -> Optional[TicketRecord]:
    """Store a visitor's message and, in the same transaction, read the conversation's open ticket.

    The gateway's hot path: the message is stored before it is routed, and
    the open ticket decides where it goes, in one database round trip.
    ``client_message_id``: the widget's id for it (bot.protocol.CLIENT_MESSAGE_ID);
    raises AlreadyStoredError (nothing stored) when the conversation already
    holds a message with that id, e.g. sent again after its gateway stopped.
    Raises ValueError on bad input, StoreUnavailableError.
    """
    if client_message_id is not None and not CLIENT_MESSAGE_ID.match(client_message_id):
        raise ValueError("client_message_id must be 32 hex digits")
    row = new_message_row(conversation_id, Sender.VISITOR.value, text, now)
    row.client_message_id = client_message_id
    with store_errors("record a visitor message"), store.session() as session:
        try:
            with session.begin():
                session.add(row)
                session.flush()  # the insert, where the unique index refuses a copy: no lookup first
                ticket = _open_row(session, conversation_id)
                return ticket_record(ticket) if ticket is not None else None
        except IntegrityError as error:
            if client_message_id is None:
                raise
            raise AlreadyStoredError(f"conversation {conversation_id} already holds this message") from error


def _insert_ticket(session: Session, request: TicketRequest, now: datetime) -> Ticket:
    contact = request.contact_email
    if contact is None and request.customer_id is None:
        # An anonymous visitor who left an address on an earlier ticket of this conversation keeps it.
        contact = session.scalar(
            select(Ticket.contact_email)
            .where(Ticket.conversation_id == request.conversation_id, Ticket.contact_email.is_not(None),
                   Ticket.customer_id.is_(None))
            .order_by(Ticket.id.desc()).limit(1)
        )
    row = Ticket(
        conversation_id=request.conversation_id,
        customer_id=request.customer_id,
        plan=request.plan,
        priority=request.priority,
        reason=request.reason,
        status=TicketStatus.OPEN.value,
        created_at=now,
        sla_due_at=request.sla_due_at,
        handover=dict(request.handover),
        contact_email=contact,
    )
    session.add(row)
    session.flush()
    detail = {"reason": request.reason, "plan": request.plan, "priority": request.priority}
    session.add(TicketEvent(ticket_id=row.id, kind="opened", actor=request.actor, at=now, detail=detail))
    session.flush()
    return row


def open_ticket(store: Store, request: TicketRequest, now: datetime) -> OpenedTicket:
    """Open a ticket for the conversation, or return the one it already has (``created`` False).

    Safe under races: when another process opened one in between, the
    database's unique index refuses the second and the existing one is
    returned. Raises StoreUnavailableError, or StoreIntegrityError when the
    database refuses the ticket for another reason (e.g. an unknown customer).
    """
    _check_aware("now", now)
    with store_errors("open a ticket"):
        try:
            with store.session() as session, session.begin():
                existing = _open_row(session, request.conversation_id)
                if existing is not None:
                    return OpenedTicket(ticket_record(existing), created=False)
                row = _insert_ticket(session, request, now)
                record = ticket_record(row)
        except IntegrityError as error:
            with store.session() as session:
                existing = _open_row(session, request.conversation_id)
                if existing is None:
                    raise StoreIntegrityError(f"the ticket could not be opened: {error.orig}") from error
                logger.info("store: conversation %s got its ticket from a concurrent request", request.conversation_id)
                return OpenedTicket(ticket_record(existing), created=False)
    logger.info("store: ticket #%s opened for %s (%s)", record.id, record.conversation_id, record.reason)
    return OpenedTicket(record, created=True)


def get_ticket(store: Store, ticket_id: int) -> Optional[TicketRecord]:
    """The ticket numbered ``ticket_id``, or None."""
    with store_errors("read a ticket"), store.session() as session:
        row = session.get(Ticket, ticket_id)
        return ticket_record(row) if row is not None else None


def open_ticket_for_conversation(store: Store, conversation_id: str) -> Optional[TicketRecord]:
    """The conversation's ticket that is not resolved yet, or None."""
    with store_errors("read a ticket"), store.session() as session:
        row = _open_row(session, conversation_id)
        return ticket_record(row) if row is not None else None


def tickets_for_customer(store: Store, customer_id: int, limit: int = 5) -> List[TicketRecord]:
    """The customer's latest tickets, newest first."""
    query = select(Ticket).where(Ticket.customer_id == customer_id).order_by(Ticket.id.desc()).limit(limit)
    with store_errors("list a customer's tickets"), store.session() as session:
        return [ticket_record(row) for row in session.scalars(query)]


def tickets_for_conversation(store: Store, conversation_id: str) -> List[TicketRecord]:
    """Every ticket of the conversation, newest first."""
    query = select(Ticket).where(Ticket.conversation_id == conversation_id).order_by(Ticket.id.desc())
    with store_errors("list a conversation's tickets"), store.session() as session:
        return [ticket_record(row) for row in session.scalars(query)]


# Queue rank of each priority, most urgent first (TICKET_PRIORITIES is in that order).
_PRIORITY_RANK = case(
    {priority: rank for rank, priority in enumerate(TICKET_PRIORITIES)},
    value=Ticket.priority,
    else_=len(TICKET_PRIORITIES),
)


def queue(store: Store, now: datetime) -> List[TicketRecord]:
    """The agents' queue: open and assigned tickets, high priority first, then by due time, then by number.

    Priority always comes first: a high-priority ticket due later is ahead of
    a normal one due sooner. ``now`` must be timezone-aware; it does not
    filter or reorder (an overdue ticket is simply due earliest).
    """
    _check_aware("now", now)
    query = (
        select(Ticket)
        .where(Ticket.status != TicketStatus.RESOLVED.value)
        .order_by(_PRIORITY_RANK, Ticket.sla_due_at, Ticket.id)
    )
    with store_errors("read the ticket queue"), store.session() as session:
        return [ticket_record(row) for row in session.scalars(query)]


def waiting_outage_tickets(store: Store, limit: int = 200) -> List[TicketRecord]:
    """Open, unclaimed tickets that an outage of the bot opened (reason ``bot_unavailable``), oldest first,
    at most ``limit``: the conversations to give back to the bot once it answers again. Raises
    StoreUnavailableError."""
    query = (
        select(Ticket)
        .where(Ticket.status == TicketStatus.OPEN.value, Ticket.reason == TicketReason.BOT_UNAVAILABLE.value)
        .order_by(Ticket.id)
        .limit(limit)
    )
    with store_errors("list the tickets an outage opened"), store.session() as session:
        return [ticket_record(row) for row in session.scalars(query)]


def ticket_counts(store: Store) -> Dict[str, int]:
    """How many tickets are in each state: keys open, assigned and resolved, always all three."""
    query = select(Ticket.status, func.count()).group_by(Ticket.status)
    counts = {status: 0 for status in TICKET_STATUSES}
    with store_errors("count tickets"), store.session() as session:
        for status, count in session.execute(query):
            counts[status] = int(count)
    return counts


def ticket_events(store: Store, ticket_id: int) -> List[TicketEventRecord]:
    """Everything that happened to the ticket, oldest first."""
    query = select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.id)
    with store_errors("read a ticket's events"), store.session() as session:
        return [_event_record(row) for row in session.scalars(query)]


@dataclass(frozen=True)
class TicketChange:
    """A ticket after a change, and the messages stored with it (in the same transaction), in order."""

    ticket: TicketRecord
    messages: Tuple[MessageRecord, ...] = ()


def _change(
    store: Store,
    ticket_id: int,
    actor: str,
    now: datetime,
    action: str,
    apply: Callable[[Session, Ticket], Sequence[NewMessage]],
) -> TicketChange:
    """Lock the ticket, refuse if resolved, apply the change (which records its events), store the
    messages it returns in the ticket's conversation, all in one transaction; the result.

    Nothing is stored when the ticket is resolved (TicketStateError) or unknown (TicketNotFoundError):
    a caller delivers the messages only after this returns.
    """
    _check_aware("now", now)
    _check_actor(actor)
    with store_errors(action), store.session() as session, session.begin():
        # FOR UPDATE on PostgreSQL; SQLite transactions here already hold the write lock.
        row = session.scalars(select(Ticket).where(Ticket.id == ticket_id).with_for_update()).first()
        if row is None:
            raise TicketNotFoundError(f"there is no ticket #{ticket_id}")
        if row.status == TicketStatus.RESOLVED.value:
            raise TicketStateError(f"ticket #{ticket_id} is already resolved: cannot {action}")
        message_rows = [message.row(row.conversation_id, now) for message in apply(session, row)]
        session.add_all(message_rows)
        session.flush()
        return TicketChange(ticket_record(row), tuple(message_record(m) for m in message_rows))


def _event(session: Session, row: Ticket, kind: str, actor: str, now: datetime, **detail: Any) -> None:
    session.add(TicketEvent(ticket_id=row.id, kind=kind, actor=actor, at=now, detail=detail or None))


def _agent_actor(agent: str) -> str:
    agent = agent.strip()
    if not agent or agent.startswith("agent:"):
        raise ValueError(f"give the agent's e-mail (without 'agent:'), got {agent!r}")
    return f"agent:{agent}"


def _assign(session: Session, row: Ticket, assignee: str, who: str, now: datetime) -> None:
    previous = row.assignee
    row.assignee = normalise_email(assignee)
    row.status = TicketStatus.ASSIGNED.value
    _event(session, row, "assigned", who, now, assignee=row.assignee, previous=previous)


def assign_ticket(
    store: Store, ticket_id: int, assignee: str, now: datetime, actor: Optional[str] = None,
    notice: Optional[NewMessage] = None,
) -> TicketChange:
    """Give the ticket to the agent ``assignee`` (an e-mail); ``actor`` defaults to that agent.

    ``notice`` (e.g. "Maria joined") is stored in the same transaction. Raises
    TicketNotFoundError, or TicketStateError when it is resolved.
    """
    who = actor or _agent_actor(assignee)
    _agent_actor(assignee)  # the assignee is checked even when someone else assigns

    def apply(session: Session, row: Ticket) -> Sequence[NewMessage]:
        _assign(session, row, assignee, who, now)
        return [notice] if notice else []

    return _change(store, ticket_id, who, now, "assign the ticket", apply)


def record_agent_reply(
    store: Store, ticket_id: int, agent: str, now: datetime,
    reply: Optional[NewMessage] = None, joined: Optional[NewMessage] = None,
    mail_after: Optional[datetime] = None, take_over: bool = True,
) -> TicketChange:
    """The agent ``agent`` (an e-mail) replies: one transaction stores the reply (``reply``) and notes it.

    A ticket assigned to nobody or to someone else is first taken by the agent
    who replies (with ``joined``, e.g. "Maria joined", stored before the
    reply); the first reply's time is kept once. With ``mail_after``, a ticket with a contact
    address gets (in the same transaction) an e-mail due then, sent unless a widget shows the reply
    first (bot/mail/outgoing.py). Without ``take_over`` a ticket a colleague has claimed is not taken:
    ChangedHandsError. Raises TicketNotFoundError, or TicketStateError when the ticket is
    resolved, before anything is stored.
    """
    who = _agent_actor(agent)

    def apply(session: Session, row: Ticket) -> Sequence[NewMessage]:
        messages: List[NewMessage] = []
        if not take_over and row.assignee not in (None, normalise_email(agent)):
            raise ChangedHandsError(row.id, row.assignee, "the reply")
        if row.assignee != normalise_email(agent):
            _assign(session, row, agent, who, now)
            messages += [joined] if joined else []
        first = row.first_agent_reply_at is None
        if first:
            row.first_agent_reply_at = now
        _event(session, row, "agent_reply", who, now, first=first)
        if mail_after is not None:
            schedule_conversation_mail(session, row, mail_after, now)
        return messages + ([reply] if reply else [])

    return _change(store, ticket_id, who, now, "record an agent reply", apply)


def close_ticket(
    store: Store, ticket_id: int, actor: str, now: datetime, how: ClosedHow = ClosedHow.RESOLVED,
    note: Optional[str] = None, notices: Sequence[NewMessage] = (), mail_after: Optional[datetime] = None,
    seen: Optional[Tuple[str, Optional[str]]] = None,
) -> TicketChange:
    """Resolve the ticket, or hand the conversation back to the bot (``how``; event "resolved" or
    "handed_back"), storing ``notices`` in the same transaction, in order (any sender: a hand-back stores
    its notice and the bot's answers to the held questions) (and, with ``mail_after``, an e-mail as for
    ``record_agent_reply``).

    ``seen``: (the agent's e-mail, the assignee the agent saw when deciding, None for nobody): the ticket
    is closed only while it is still that one's or the agent's own, else ChangedHandsError (a colleague
    took it meanwhile). Raises TicketNotFoundError, or TicketStateError when already resolved.
    """

    def apply(session: Session, row: Ticket) -> Sequence[NewMessage]:
        if seen is not None and row.assignee is not None:
            agent, saw = seen
            if row.assignee not in (normalise_email(agent), normalise_email(saw) if saw else None):
                raise ChangedHandsError(row.id, row.assignee, "handing it back" if how is ClosedHow.HANDED_BACK
                                        else "resolving it")
        row.status = TicketStatus.RESOLVED.value
        row.resolved_at = now
        _event(session, row, how.value, actor, now, **({"note": note} if note else {}))
        if mail_after is not None:
            schedule_conversation_mail(session, row, mail_after, now)
        return notices

    action = "hand the ticket back" if how is ClosedHow.HANDED_BACK else "resolve the ticket"
    return _change(store, ticket_id, actor, now, action, apply)


def _waiting_for_a_reply() -> Any:
    """Tickets not resolved that no agent has answered yet (assigned or not)."""
    return (Ticket.status != TicketStatus.RESOLVED.value) & Ticket.first_agent_reply_at.is_(None)


def queue_ahead(store: Store, ticket: TicketRecord) -> int:
    """How many tickets wait for a first reply ahead of ``ticket``: opened before it (a lower number),
    of the same or a higher priority, not resolved and not answered by an agent yet. Raises
    StoreUnavailableError."""
    query = select(func.count()).select_from(Ticket).where(
        _waiting_for_a_reply(), Ticket.id < ticket.id, _PRIORITY_RANK <= TICKET_PRIORITIES.index(ticket.priority),
    )
    with store_errors("count the queue ahead of a ticket"), store.session() as session:
        return int(session.scalar(query) or 0)


def unanswered_tickets(store: Store, priorities: Sequence[str], limit: int = 500) -> List[TicketRecord]:
    """Tickets of ``priorities`` that are not resolved and no agent has answered, earliest due first, at
    most ``limit``: the promises the on-call watch looks after. Raises StoreUnavailableError."""
    query = (
        select(Ticket).where(_waiting_for_a_reply(), Ticket.priority.in_(list(priorities)))
        .order_by(Ticket.sla_due_at, Ticket.id).limit(limit)
    )
    with store_errors("list the unanswered tickets"), store.session() as session:
        return [ticket_record(row) for row in session.scalars(query)]


def claim_due_notice(store: Store, ticket_id: int, now: datetime, notice: NewMessage) -> Optional[MessageRecord]:
    """Note that the visitor is told their first-reply due time is about to pass, and store ``notice`` in
    their conversation, in one transaction; only once per ticket (whichever gateway comes first) and only
    while it is still unresolved and unanswered. The stored notice, or None when it was not for this
    call to give. Raises StoreUnavailableError."""
    _check_aware("now", now)
    with store_errors("note the due-time notice"), store.session() as session, session.begin():
        # One conditional UPDATE is the claim: two gateways cannot both see it succeed.
        claimed = session.execute(
            update(Ticket)
            .where(Ticket.id == ticket_id, Ticket.due_notice_at.is_(None), _waiting_for_a_reply())
            .values(due_notice_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if claimed != 1:
            return None
        conversation_id = session.scalar(select(Ticket.conversation_id).where(Ticket.id == ticket_id))
        row = notice.row(conversation_id, now)
        session.add(row)
        session.add(TicketEvent(ticket_id=ticket_id, kind="due_notice", actor="bot", at=now, detail=None))
        session.flush()
        return message_record(row)
def set_contact_email(store: Store, conversation_id: str, email: str) -> Optional[TicketRecord]:
    """Keep ``email`` (already validated) as where the conversation's open ticket's replies are e-mailed.

    Returns the ticket, or None when the conversation has no open ticket (nothing is stored). A
    customer's ticket keeps the account's address (returned unchanged: the caller says so).
    Raises StoreUnavailableError.
    """
    with store_errors("keep a visitor's e-mail address"), store.session() as session, session.begin():
        row = _open_row(session, conversation_id)
        if row is None:
            return None
        if row.customer_id is not None:
            return ticket_record(row)
        row.contact_email = email
        session.flush()
        return ticket_record(row)

