"""The agents' queue as they work it: one page of tickets with filters and search, each ticket's latest
message and what the agent has not read, their read marks, and resolved tickets opened again.

"Unread" is per agent and ticket: the visitor's messages after the newest message that agent had in view
when their inbox last showed the ticket open (``mark_ticket_seen``; table ``agent_ticket_reads``). A
ticket the agent never opened has every visitor message of its conversation unread.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Dict, List, Optional, Sequence

from sqlalchemy import and_, case, exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlalchemy.sql import ColumnElement, Select

from bot.protocol import Priority, Sender, TicketStatus
from bot.store.customers import normalise_email
from bot.store.database import Store, store_errors
from bot.store.messages import MessageRecord, NewMessage, message_record
from bot.store.models import TICKET_PRIORITIES, AgentTicketRead, Customer, Message, Ticket, TicketEvent, TicketNote
from bot.store.tickets import (
    TicketChange,
    TicketNotFoundError,
    TicketRecord,
    TicketStateError,
    ticket_record,
)

# The queue's filters (``QueueQuery.filter``): every ticket of the view, the viewer's, nobody's yet,
# past their first-reply due time without a reply, high priority (the support policy's premium plans),
# and those whose latest word (visitor or agent) is an agent's: waiting for the visitor.
QUEUE_FILTERS = ("all", "mine", "unclaimed", "overdue", "premium", "waiting")
# Open and assigned tickets, or resolved ones (the history, newest resolution first).
QUEUE_VIEWS = ("open", "resolved")
MAX_PER_PAGE = 100
MAX_SEARCH_CHARS = 200
# The senders of a conversation's "latest message": people, not the bot's acknowledgements.
PEOPLE = (Sender.VISITOR.value, Sender.AGENT.value)
# An anonymous visitor's label: the first LABEL_HEX_DIGITS hex digits (48 bits) of the MD5 of the
# conversation id, in three groups ("Visitor 3FA9-1C2B-77D0"). MD5 because both databases compute it
# (PostgreSQL's md5(); bot/store/database.py gives SQLite the same function), so the queue searches by
# label in SQL; it is a name, not a secret. Two of 100,000 conversations share a label with a chance of
# about 1 in 56,000 (the birthday bound, n^2 / 2^49); the old label, the id's last four letters or
# digits, named "api:v10" and "api:iv10" both "Visitor IV10".
LABEL_HEX_DIGITS = 12
LABEL_GROUP = 4
_LABEL_PATTERN = re.compile(r"^(?:visitor\s+)?((?:[0-9a-f]{4}-?){0,2}[0-9a-f]{4})$", re.IGNORECASE)


def label_digest(conversation_id: str) -> str:
    """The hex digits a visitor label shows: MD5 of the conversation id (UTF-8), upper case."""
    digest = hashlib.md5(conversation_id.encode("utf-8"), usedforsecurity=False).hexdigest()
    return digest[:LABEL_HEX_DIGITS].upper()


def visitor_label(conversation_id: str) -> str:
    """A stable, readable name for an anonymous visitor, different for every conversation (but for a chance
    given above): "Visitor " and 12 hex digits of the conversation id's MD5 in groups of four (e.g.
    "Visitor 3FA9-1C2B-77D0"); searchable in the queue as the whole label or its first 4 or more digits."""
    digits = label_digest(conversation_id)
    return "Visitor " + "-".join(digits[i:i + LABEL_GROUP] for i in range(0, LABEL_HEX_DIGITS, LABEL_GROUP))


@dataclass(frozen=True)
class QueueQuery:
    """One page of the queue as asked for.

    ``view``: one of QUEUE_VIEWS; ``filter``: one of QUEUE_FILTERS; ``search``: a ticket number ("#12" or
    "12"), words of a customer's name or e-mail, the anonymous visitor's label ("Visitor 3FA9-1C2B-77D0", or
    its first four digits or more), or text
    any visitor or agent wrote in the conversation (case-insensitive, at most MAX_SEARCH_CHARS);
    ``page`` from 1; ``per_page`` 1 to MAX_PER_PAGE. Raises ValueError on anything else.
    """

    view: str = "open"
    filter: str = "all"
    search: str = ""
    page: int = 1
    per_page: int = 25

    def __post_init__(self) -> None:
        if self.view not in QUEUE_VIEWS:
            raise ValueError(f"view must be one of {', '.join(QUEUE_VIEWS)}, got {self.view!r}")
        if self.filter not in QUEUE_FILTERS:
            raise ValueError(f"filter must be one of {', '.join(QUEUE_FILTERS)}, got {self.filter!r}")
        if len(self.search) > MAX_SEARCH_CHARS:
            raise ValueError(f"search is at most {MAX_SEARCH_CHARS} characters")
        if self.page < 1:
            raise ValueError(f"page starts at 1, got {self.page}")
        if not 1 <= self.per_page <= MAX_PER_PAGE:
            raise ValueError(f"per_page is 1 to {MAX_PER_PAGE}, got {self.per_page}")


@dataclass(frozen=True)
class LatestMessage:
    """A conversation's newest message by a person: ``sender`` visitor or agent, ``author`` the agent's
    e-mail (None for the visitor), ``text`` and ``at`` (UTC)."""

    id: int
    sender: str
    author: Optional[str]
    text: str
    at: datetime


@dataclass(frozen=True)
class QueueRow:
    """A ticket on the page, its conversation's latest message (None when no person wrote yet) and how
    many visitor messages the viewer has not read (always 0 in the resolved view)."""

    ticket: TicketRecord
    latest: Optional[LatestMessage]
    unread: int


@dataclass(frozen=True)
class Attention:
    """An open ticket that is the viewer's or nobody's, with visitor messages the viewer has not read:
    ``unread`` of them, the newest being ``latest_id`` / ``latest_text``."""

    ticket_id: int
    unread: int
    latest_id: int
    latest_text: str


@dataclass(frozen=True)
class QueuePage:
    """One page: its rows, how many tickets match in all (``total``), and per filter how many tickets of
    the view match the search (``filter_counts``, every QUEUE_FILTERS key)."""

    rows: List[QueueRow]
    total: int
    page: int
    per_page: int
    filter_counts: Dict[str, int] = field(default_factory=dict)

    @property
    def pages(self) -> int:
        """How many pages there are (at least 1)."""
        return max(1, -(-self.total // self.per_page))


_PRIORITY_RANK = case(
    {priority: rank for rank, priority in enumerate(TICKET_PRIORITIES)},
    value=Ticket.priority,
    else_=len(TICKET_PRIORITIES),
)


def _like(term: str) -> str:
    """``term`` as a LIKE pattern matching it anywhere (its own % and _ taken literally; escape \\)."""
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _latest_person_id() -> Any:
    """The id of the ticket's conversation's newest visitor or agent message (correlated, scalar)."""
    person = aliased(Message)
    return (
        select(func.max(person.id))
        .where(person.conversation_id == Ticket.conversation_id, person.sender.in_(PEOPLE))
        .correlate(Ticket)
        .scalar_subquery()
    )


def _filter_clause(name: str, viewer: str, now: datetime) -> Optional[ColumnElement]:
    if name == "mine":
        return Ticket.assignee == viewer
    if name == "unclaimed":
        return Ticket.assignee.is_(None)
    if name == "overdue":
        return and_(Ticket.status != TicketStatus.RESOLVED.value, Ticket.first_agent_reply_at.is_(None),
                    Ticket.sla_due_at < now)
    if name == "premium":
        return Ticket.priority == Priority.HIGH.value
    if name == "waiting":
        last_sender = select(Message.sender).where(Message.id == _latest_person_id()).correlate(Ticket).scalar_subquery()
        return last_sender == Sender.AGENT.value
    return None


def _search_clause(search: str) -> Optional[ColumnElement]:
    term = " ".join(search.split())
    if not term:
        return None
    pattern = _like(term)
    said = exists().where(Message.conversation_id == Ticket.conversation_id, Message.sender.in_(PEOPLE),
                          Message.text.ilike(pattern, escape="\\"))
    customer = exists().where(Customer.id == Ticket.customer_id,
                              or_(Customer.name.ilike(pattern, escape="\\"), Customer.email.ilike(pattern, escape="\\")))
    clauses: List[ColumnElement] = [said, customer, Ticket.contact_email.ilike(pattern, escape="\\")]
    number = re.fullmatch(r"#?\s*(\d{1,9})", term)
    if number:
        clauses.append(Ticket.id == int(number.group(1)))
    label = _LABEL_PATTERN.fullmatch(term)
    if label:
        # The label's digits begin the MD5 of the conversation id (visitor_label).
        digits = label.group(1).replace("-", "").lower()
        clauses.append(func.substr(func.md5(Ticket.conversation_id), 1, len(digits)) == digits)
    return or_(*clauses)


def _base(query: QueueQuery) -> Select:
    resolved = Ticket.status == TicketStatus.RESOLVED.value
    base = select(Ticket).where(resolved if query.view == "resolved" else ~resolved)
    searched = _search_clause(query.search)
    return base.where(searched) if searched is not None else base


def queue_page(store: Store, now: datetime, viewer: str, query: QueueQuery) -> QueuePage:
    """One page of the queue for the agent ``viewer`` (an e-mail; "mine" and unread are theirs).

    Open view: high priority first, then by first-reply due time, then by number; resolved view: newest
    resolution first. ``now`` (timezone-aware) decides "overdue". Raises ValueError,
    StoreUnavailableError.
    """
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    viewer = normalise_email(viewer)
    base = _base(query)
    chosen = _filter_clause(query.filter, viewer, now)
    selected = base.where(chosen) if chosen is not None else base
    if query.view == "resolved":
        ordered = selected.order_by(Ticket.resolved_at.desc(), Ticket.id.desc())
    else:
        ordered = selected.order_by(_PRIORITY_RANK, Ticket.sla_due_at, Ticket.id)
    paged = ordered.limit(query.per_page).offset((query.page - 1) * query.per_page)
    with store_errors("read the agents' queue"), store.session() as session:
        tickets = [ticket_record(row) for row in session.scalars(paged)]
        counts: Dict[str, int] = {}
        for name in QUEUE_FILTERS:
            clause = _filter_clause(name, viewer, now)
            counted = base.where(clause) if clause is not None else base
            counts[name] = int(session.scalar(select(func.count()).select_from(counted.subquery())) or 0)
        total = counts[query.filter]
        latest = _latest_messages(session, [t.conversation_id for t in tickets])
        unread = {} if query.view == "resolved" else _unread_counts(session, viewer, [t.id for t in tickets])
    rows = [QueueRow(t, latest.get(t.conversation_id), unread.get(t.id, 0)) for t in tickets]
    return QueuePage(rows, total, query.page, query.per_page, counts)


def _latest_messages(session: Any, conversation_ids: Sequence[str]) -> Dict[str, LatestMessage]:
    if not conversation_ids:
        return {}
    newest = (
        select(func.max(Message.id))
        .where(Message.conversation_id.in_(list(set(conversation_ids))), Message.sender.in_(PEOPLE))
        .group_by(Message.conversation_id)
    )
    return {
        row.conversation_id: LatestMessage(row.id, row.sender, row.author, row.text, row.created_at)
        for row in session.scalars(select(Message).where(Message.id.in_(newest)))
    }


def _unread_rows(viewer: str) -> Select:
    """(ticket id, unread visitor messages, newest unread id) per ticket, before any WHERE on tickets."""
    mark = func.coalesce(AgentTicketRead.seen_message_id, 0)
    return (
        select(Ticket.id, func.count(Message.id), func.max(Message.id))
        .join(Message, and_(Message.conversation_id == Ticket.conversation_id,
                            Message.sender == Sender.VISITOR.value))
        .outerjoin(AgentTicketRead, and_(AgentTicketRead.ticket_id == Ticket.id, AgentTicketRead.staff_email == viewer))
        .where(Message.id > mark)
        .group_by(Ticket.id)
    )


def _unread_counts(session: Any, viewer: str, ticket_ids: Sequence[int]) -> Dict[int, int]:
    if not ticket_ids:
        return {}
    rows = session.execute(_unread_rows(viewer).where(Ticket.id.in_(list(ticket_ids))))
    return {int(ticket_id): int(count) for ticket_id, count, _ in rows}


def unread_counts(store: Store, viewer: str, ticket_ids: Sequence[int]) -> Dict[int, int]:
    """How many visitor messages ``viewer`` (an e-mail) has not read on each of ``ticket_ids`` (tickets with
    none left out), as the queue counts them. Raises StoreUnavailableError."""
    viewer = normalise_email(viewer)
    with store_errors("read what an agent has not read"), store.session() as session:
        return _unread_counts(session, viewer, ticket_ids)


def needing_attention(store: Store, viewer: str, limit: int = 200) -> List[Attention]:
    """The open tickets that are ``viewer``'s or nobody's with visitor messages ``viewer`` has not read,
    most recent message first, at most ``limit`` (for the tab title's count and the notifications).
    Raises StoreUnavailableError."""
    viewer = normalise_email(viewer)
    query = (
        _unread_rows(viewer)
        .where(Ticket.status != TicketStatus.RESOLVED.value, or_(Ticket.assignee.is_(None), Ticket.assignee == viewer))
        .order_by(func.max(Message.id).desc())
        .limit(limit)
    )
    with store_errors("read what an agent has not read"), store.session() as session:
        rows = [(int(t), int(c), int(m)) for t, c, m in session.execute(query)]
        texts = dict(session.execute(select(Message.id, Message.text).where(Message.id.in_([m for _, _, m in rows]))).all())
    return [Attention(t, c, m, texts.get(m, "")) for t, c, m in rows]


def mark_ticket_seen(store: Store, viewer: str, ticket_id: int, up_to: int, now: datetime) -> int:
    """Record that ``viewer``'s inbox showed ticket ``ticket_id`` open with its conversation up to message
    ``up_to`` (an id the inbox received; a larger one counts as the conversation's newest).

    The mark never moves back. Returns the mark now kept. Raises TicketNotFoundError, ValueError (a
    negative ``up_to``), StoreUnavailableError.
    """
    if up_to < 0:
        raise ValueError(f"up_to must be a message id, got {up_to}")
    viewer = normalise_email(viewer)
    with store_errors("record what an agent has read"):
        for attempt in range(2):
            try:
                with store.session() as session, session.begin():
                    ticket = session.get(Ticket, ticket_id)
                    if ticket is None:
                        raise TicketNotFoundError(f"there is no ticket #{ticket_id}")
                    newest = session.scalar(
                        select(func.coalesce(func.max(Message.id), 0)).where(Message.conversation_id == ticket.conversation_id)
                    )
                    seen = min(up_to, int(newest or 0))
                    row = session.get(AgentTicketRead, (viewer, ticket_id))
                    if row is None:
                        session.add(AgentTicketRead(staff_email=viewer, ticket_id=ticket_id, seen_message_id=seen, seen_at=now))
                        return seen
                    if seen > row.seen_message_id:
                        row.seen_message_id, row.seen_at = seen, now
                    return int(row.seen_message_id)
            except IntegrityError:
                if attempt:
                    raise
                # The same agent's other tab inserted the row first: update it.
    raise AssertionError("unreachable")


def reopen_ticket(store: Store, ticket_id: int, agent: str, now: datetime, notice: Optional[NewMessage] = None) -> TicketChange:
    """Open a resolved ticket again, assigned to the agent ``agent`` (an e-mail) who reopens it; ``notice``
    (what the visitor is told) is stored in the same transaction. Event "reopened".

    From then on the conversation's messages go to the team again. Raises TicketNotFoundError,
    TicketStateError when the ticket is not resolved or its conversation has another open ticket (one
    open ticket per conversation).
    """
    agent = normalise_email(agent)
    with store_errors("reopen a ticket"):
        try:
            with store.session() as session, session.begin():
                row = session.scalars(select(Ticket).where(Ticket.id == ticket_id).with_for_update()).first()
                if row is None:
                    raise TicketNotFoundError(f"there is no ticket #{ticket_id}")
                if row.status != TicketStatus.RESOLVED.value:
                    raise TicketStateError(f"ticket #{ticket_id} is not resolved")
                other = session.scalar(select(Ticket.id).where(
                    Ticket.conversation_id == row.conversation_id, Ticket.status != TicketStatus.RESOLVED.value))
                if other is not None:
                    raise TicketStateError(f"this conversation has an open ticket already: #{other}")
                row.status, row.assignee, row.resolved_at = TicketStatus.ASSIGNED.value, agent, None
                session.add(TicketEvent(ticket_id=row.id, kind="reopened", actor=f"agent:{agent}", at=now))
                messages = [notice.row(row.conversation_id, now)] if notice else []
                session.add_all(messages)
                session.flush()
                return TicketChange(ticket_record(row), tuple(message_record(m) for m in messages))
        except IntegrityError as error:
            # Another ticket of the conversation opened in between (the one-open-ticket index refused this).
            raise TicketStateError("this conversation has an open ticket already") from error



def other_open_tickets(store: Store, ticket: TicketRecord, limit: int = 10) -> List[TicketRecord]:
    """The same customer's other open tickets, oldest first, at most ``limit``: a signed-in customer's
    (same ``customer_id``), or an anonymous visitor's who left the same e-mail address (``contact_email``).
    Empty for an anonymous visitor with no address. Raises StoreUnavailableError."""
    same = _same_customer(ticket)
    if same is None:
        return []
    query = (
        select(Ticket)
        .where(same, Ticket.id != ticket.id, Ticket.status != TicketStatus.RESOLVED.value)
        .order_by(Ticket.id)
        .limit(limit)
    )
    with store_errors("list a customer's other open tickets"), store.session() as session:
        return [ticket_record(row) for row in session.scalars(query)]


def _same_customer(ticket: Any) -> Optional[ColumnElement]:
    """Tickets of the same customer as ``ticket`` (a TicketRecord or row), or None when nobody can tell."""
    if ticket.customer_id is not None:
        return Ticket.customer_id == ticket.customer_id
    if ticket.contact_email:
        return and_(Ticket.customer_id.is_(None), func.lower(Ticket.contact_email) == ticket.contact_email.lower())
    return None


# How many of the merged ticket's visitor messages its note on the kept ticket quotes.
MERGE_QUOTED_MESSAGES = 20


class ClaimedByColleagueError(TicketStateError):
    """The ticket to merge away is a colleague's (claimed by another agent): merging would close it under
    them, so it is done only when confirmed (409 until then). ``assignee`` is the colleague's e-mail."""

    def __init__(self, ticket_id: int, assignee: str) -> None:
        super().__init__(
            f"ticket #{ticket_id} is claimed by {assignee}: merging closes it and takes it from them; "
            f'confirm to merge anyway (send {{"from": {ticket_id}, "confirm": true}})'
        )
        self.ticket_id = ticket_id
        self.assignee = assignee


@dataclass(frozen=True)
class Merge:
    """A merge's outcome: the ticket kept (``into``), the one closed into it (``merged``), the note added to
    ``into`` (quoting the merged conversation's visitor messages) and the notice stored in the merged
    ticket's conversation (to deliver to its widgets), if any."""

    into: TicketRecord
    merged: TicketRecord
    note_id: int
    notice: Optional[MessageRecord]


def merge_tickets(
    store: Store, into_id: int, from_id: int, agent: str, now: datetime, notice: Optional[NewMessage] = None,
    confirmed: bool = False,
) -> Merge:
    """Merge the customer's open ticket ``from_id`` into their open ticket ``into_id``, by the agent ``agent``
    (an e-mail), in one transaction: ``from_id`` is closed (status resolved, event "merged" naming
    ``into_id``: its conversation goes back to the bot), ``into_id`` gets the event "merged_in" and an
    internal note quoting the merged conversation's last MERGE_QUOTED_MESSAGES visitor messages, and
    ``notice`` (what that conversation's visitor is told) is stored there.

    A ``from_id`` claimed by another agent than ``agent`` is merged only when ``confirmed`` (checked under
    the rows' locks, so a claim made just before counts).

    Raises TicketNotFoundError, TicketStateError (either resolved, the same ticket, or not the same
    customer: see ``other_open_tickets``), ClaimedByColleagueError (a colleague's, not confirmed),
    ValueError, StoreUnavailableError.
    """
    if into_id == from_id:
        raise TicketStateError("a ticket cannot be merged into itself")
    agent = normalise_email(agent)
    with store_errors("merge tickets"), store.session() as session, session.begin():
        rows = {row.id: row for row in session.scalars(
            select(Ticket).where(Ticket.id.in_([into_id, from_id])).order_by(Ticket.id).with_for_update())}
        for number in (into_id, from_id):
            if number not in rows:
                raise TicketNotFoundError(f"there is no ticket #{number}")
            if rows[number].status == TicketStatus.RESOLVED.value:
                raise TicketStateError(f"ticket #{number} is resolved: only open tickets are merged")
        into, source = rows[into_id], rows[from_id]
        same = _same_customer(into)
        if same is None or session.scalar(select(Ticket.id).where(Ticket.id == from_id, same)) is None:
            raise TicketStateError(f"tickets #{into_id} and #{from_id} are not the same customer's")
        if source.assignee is not None and source.assignee != agent and not confirmed:
            raise ClaimedByColleagueError(from_id, source.assignee)
        source.status, source.resolved_at = TicketStatus.RESOLVED.value, now
        session.add(TicketEvent(ticket_id=from_id, kind="merged", actor=f"agent:{agent}", at=now, detail={"into": into_id}))
        session.add(TicketEvent(ticket_id=into_id, kind="merged_in", actor=f"agent:{agent}", at=now, detail={"from": from_id}))
        said = list(session.scalars(
            select(Message.text).where(Message.conversation_id == source.conversation_id,
                                       Message.sender == Sender.VISITOR.value)
            .order_by(Message.id.desc()).limit(MERGE_QUOTED_MESSAGES)))
        quoted = "\n".join(f"> {text}" for text in reversed(said)) or "(no visitor message)"
        note = TicketNote(ticket_id=into_id, author=agent, created_at=now,
                          text=f"Merged #{from_id} into this ticket. What the visitor wrote there:\n{quoted}")
        session.add(note)
        stored = notice.row(source.conversation_id, now) if notice else None
        if stored is not None:
            session.add(stored)
        session.flush()
        return Merge(ticket_record(into), ticket_record(source), note.id,
                     message_record(stored) if stored is not None else None)


def latest_messages(store: Store, conversation_ids: Sequence[str]) -> Dict[str, LatestMessage]:
    """Each conversation's newest visitor or agent message, by conversation id (none: left out). Raises
    StoreUnavailableError."""
    with store_errors("read conversations' latest messages"), store.session() as session:
        return _latest_messages(session, conversation_ids)
