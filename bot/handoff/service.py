"""Handing a conversation to a person: who the visitor is, whether to open a ticket, and opening it.

The rules (the issue "Human handoff tickets"):
(a) the visitor asks for a person: a ticket;
(b) plans that do not escalate at once: the bot's confidence drops twice
    in a row (the first time it offers the closest articles);
(c) plans that escalate at once (high priority): the first sign of
    trouble, a low-confidence message, a request, a problem article, an
    answer that did not help;
(d) an answer did not help and the visitor wants more help.
Priority and the first-reply due time come from the support policy
(kb/support_policy.yml), never from asking the visitor.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Callable, Dict, List, Mapping, Optional

from bot.handoff.handover import build_handover
from bot.handoff.policy import FALLBACK_PLAN, PlanPolicy, SupportPolicy
from bot.identity import Identity, identity_from_metadata
from bot.store.customers import CustomerRecord, find_customer
from bot.store.database import StoreError
from bot.store.tickets import (
    OpenedTicket,
    TicketRecord,
    TicketRequest,
    open_ticket,
    open_ticket_for_conversation,
    tickets_for_conversation,
    tickets_for_customer,
)

logger = logging.getLogger(__name__)

ACTIVE_STATUS = "active"


class Trouble(str, Enum):
    """Why the bot may step aside (each maps to the ticket's ``reason``)."""

    REQUESTED = "requested"
    LOW_CONFIDENCE = "low_confidence"
    PROBLEM = "premium_problem"
    NOT_HELPFUL = "not_helpful"
    BOT_UNAVAILABLE = "bot_unavailable"


# Low-confidence messages in a row before a ticket opens, for plans that do not escalate at once.
LOW_CONFIDENCE_LIMIT = 2


@dataclass(frozen=True)
class Visitor:
    """Who sent the message: a verified customer, or anonymous (and why)."""

    identity: Identity
    customer: Optional[CustomerRecord]
    # Said to the visitor when their token named nobody we can find, or the store is down.
    lookup_problem: Optional[str] = None

    @property
    def support_plan(self) -> str:
        """The plan whose support rules apply: an active customer's plan, else the anonymous rules."""
        if self.customer is not None and self.customer.status == ACTIVE_STATUS:
            return self.customer.plan
        return FALLBACK_PLAN

    @property
    def plan_label(self) -> str:
        """The plan recorded on a ticket ("anonymous" for a visitor nobody identified)."""
        return self.customer.plan if self.customer is not None else FALLBACK_PLAN


@dataclass(frozen=True)
class TicketOutcome:
    """What happened when the bot tried to open a ticket."""

    ticket: Optional[TicketRecord]
    created: bool
    rules: PlanPolicy
    agents_working: bool
    next_opening: datetime
    failed: bool = False


def should_open_ticket(trouble: Trouble, rules: PlanPolicy, low_confidence_in_a_row: int) -> bool:
    """Whether this trouble, for a visitor under ``rules``, opens a ticket now."""
    if trouble in (Trouble.REQUESTED, Trouble.NOT_HELPFUL, Trouble.BOT_UNAVAILABLE):
        return True
    if rules.escalates_at_once:
        return True
    return trouble is Trouble.LOW_CONFIDENCE and low_confidence_in_a_row >= LOW_CONFIDENCE_LIMIT


class HandoffService:
    """Identity, tickets and the support policy for one process; the clock is injected."""

    def __init__(self, database_url: str, identity_secret: str, policy: SupportPolicy, clock: Callable[[], datetime]):
        self.database_url = database_url
        self.policy = policy
        self._secret = identity_secret
        self._clock = clock

    def now(self) -> datetime:
        """The service's clock (real time, or the one a test or demo injected)."""
        return self._clock()

    def identity(self, metadata: Optional[Mapping[str, Any]]) -> Identity:
        """Whether a message's token verifies (no database lookup)."""
        return identity_from_metadata(self._secret, metadata)

    def visitor(self, metadata: Optional[Mapping[str, Any]]) -> Visitor:
        """The visitor a message's metadata names; anonymous unless its token verifies and the customer exists."""
        identity = self.identity(metadata)
        if identity.anonymous:
            return Visitor(identity, None)
        try:
            customer = find_customer(self.database_url, identity.customer_key or "")
        except StoreError as error:
            logger.error("handoff: customer lookup failed: %s", error)
            return Visitor(identity, None, lookup_problem="store_unavailable")
        if customer is None:
            # A valid token for a customer we do not have (deleted, or another system's id).
            logger.warning("handoff: a verified token names no known customer; treating the visitor as anonymous")
            return Visitor(identity, None, lookup_problem="unknown_customer")
        return Visitor(identity, customer)

    def rules_for(self, visitor: Visitor) -> PlanPolicy:
        """The support rules that apply to ``visitor``."""
        return self.policy.for_plan(visitor.support_plan)

    def current_ticket(self, conversation_id: str) -> Optional[TicketRecord]:
        """The conversation's open ticket; None when there is none (or the store cannot say)."""
        try:
            return open_ticket_for_conversation(self.database_url, conversation_id)
        except StoreError as error:
            logger.error("handoff: could not read the open ticket of a conversation: %s", error)
            return None

    def open_ticket(
        self, conversation_id: str, visitor: Visitor, trouble: Trouble, events: List[Mapping[str, Any]]
    ) -> TicketOutcome:
        """Open (or find) the conversation's ticket with the handover; never raises for store trouble."""
        now = self.now()
        plan = visitor.support_plan
        rules = self.policy.for_plan(plan)
        working = self.policy.is_open(plan, now)
        opening = self.policy.next_opening(plan, now)
        handover = build_handover(
            events, visitor.customer, trouble.value, visitor.identity.reason,
            latest_failed=trouble is Trouble.LOW_CONFIDENCE,
        )
        request = TicketRequest(
            conversation_id=conversation_id,
            plan=visitor.plan_label,
            priority=rules.priority,
            reason=trouble.value,
            sla_due_at=self.policy.sla_due(plan, now),
            customer_id=visitor.customer.id if visitor.customer else None,
            handover=handover,
        )
        try:
            opened: OpenedTicket = open_ticket(self.database_url, request, now)
        except StoreError as error:
            logger.error("handoff: ticket for a %s visitor could not be stored: %s", trouble.value, error)
            return TicketOutcome(None, False, rules, working, opening, failed=True)
        if opened.created:
            logger.info("handoff: opened ticket %s (%s, %s)", opened.ticket.number, trouble.value, rules.priority)
        return TicketOutcome(opened.ticket, opened.created, rules, working, opening)

    def tickets_of(self, conversation_id: str, visitor: Visitor, limit: int = 5) -> List[TicketRecord]:
        """The visitor's recent tickets: the customer's, or this conversation's for anonymous visitors."""
        if visitor.customer is not None:
            tickets = tickets_for_customer(self.database_url, visitor.customer.id, limit=limit)
        else:
            tickets = tickets_for_conversation(self.database_url, conversation_id)[:limit]
        return tickets


def utc_clock() -> datetime:
    """The real clock, in UTC."""
    return datetime.now(timezone.utc)


def fixed_clock(moment: datetime) -> Callable[[], datetime]:
    """A clock stopped at ``moment`` (demos and tests)."""
    if moment.tzinfo is None:
        raise ValueError("a fixed clock needs a timezone-aware time")
    return lambda: moment


def reply_promise(outcome: TicketOutcome, policy: SupportPolicy) -> Dict[str, Any]:
    """The words that fill the ticket-opened messages: number, reply time, hours, next opening, due time."""
    ticket = outcome.ticket
    return {
        "ticket": ticket.number if ticket else "",
        "reply_time": outcome.rules.describe_first_reply(),
        "hours": policy.describe_hours() if policy.business_hours is not None else "",
        "opens_at": policy.describe_moment(outcome.next_opening),
        "due": policy.describe_moment(ticket.sla_due_at) if ticket else "",
    }
