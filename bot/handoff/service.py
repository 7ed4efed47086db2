"""Handing a conversation to a person: who the visitor is, and opening the ticket.

The decision whether to open one is ``bot.handoff.rules.should_open_ticket``;
this service carries it out against the store, with the support policy's
priority and first-reply due time, for the action server (the bot's own
escalations) and the gateway (the bot is unreachable) alike.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Collection, Dict, List, Mapping, Optional

from bot.clock import Clock
from bot.handoff.handover import opening_facts
from bot.handoff.policy import FALLBACK_PLAN, PlanPolicy, SupportPolicy
from bot.identity import TOKEN_METADATA_KEY, Identity, bot_token, identity_from_metadata
from bot.protocol import TicketReason
from bot.store.customers import CustomerRecord, find_customer
from bot.store.database import Store, StoreError
from bot.store.presence import agents_online
from bot.store.tickets import (
    TicketRecord,
    TicketRequest,
    open_ticket,
    queue_ahead,
    tickets_for_conversation,
    tickets_for_customer,
)

logger = logging.getLogger(__name__)

ACTIVE_STATUS = "active"


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
    """What happened when a ticket was to open: the ticket (None when the store failed), and the facts
    the promise is made from: the plan's rules, whether its agents work now (the policy's hours) and
    when they next do, how many agents are signed in to the inbox right now (``agents_online``, any
    gateway) and how many tickets of the same or a higher priority wait for a first reply ahead of it
    (``queue_ahead``). Both counts are 0 when the store could not say (then no minutes-scale promise is
    made: nobody is known to be there)."""

    ticket: Optional[TicketRecord]
    created: bool
    rules: PlanPolicy
    agents_working: bool
    next_opening: datetime
    failed: bool = False
    agents_online: int = 0
    queue_ahead: int = 0


class HandoffService:
    """Identity, tickets and the support policy for one process; the store and the clock are injected."""

    def __init__(self, store: Store, identity_secret: str, policy: SupportPolicy, clock: Clock,
                 token_audiences: Collection[str] = ()) -> None:
        """``token_audiences``: the audiences of tokens taken besides the website's own (the actions take
        the gateway's BOT_AUDIENCE tokens; the gateway takes none)."""
        self.store = store
        self.policy = policy
        self._secret = identity_secret
        self._clock = clock
        self._audiences = tuple(token_audiences)

    def now(self) -> datetime:
        """The service's clock (real time, or the one a test or demo injected)."""
        return self._clock()

    def identity(self, metadata: Optional[Mapping[str, Any]]) -> Identity:
        """Whether a message's token verifies (no database lookup)."""
        return identity_from_metadata(self._secret, metadata, self._audiences)

    def bot_metadata(self, metadata: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
        """What of a visitor's metadata goes on to the bot: for a token that verifies, a token of the
        gateway's own for the same customer (bot/identity.py, ``bot_token``); else nothing."""
        token = bot_token(self._secret, self.identity(metadata))
        return {} if token is None else {TOKEN_METADATA_KEY: token}

    def visitor(self, metadata: Optional[Mapping[str, Any]]) -> Visitor:
        """The visitor a message's metadata names; anonymous unless its token verifies and the customer exists."""
        identity = self.identity(metadata)
        if identity.anonymous:
            return Visitor(identity, None)
        try:
            customer = find_customer(self.store, identity.customer_key or "")
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

    def open_ticket(self, conversation_id: str, visitor: Visitor, reason: TicketReason) -> TicketOutcome:
        """Open (or find) the conversation's ticket; never raises for store trouble (``failed`` instead)."""
        now = self.now()
        plan = visitor.support_plan
        rules = self.policy.for_plan(plan)
        working = self.policy.is_open(plan, now)
        opening = self.policy.next_opening(plan, now)
        request = TicketRequest(
            conversation_id=conversation_id,
            plan=visitor.plan_label,
            priority=rules.priority,
            reason=reason.value,
            sla_due_at=self.policy.sla_due(plan, now),
            customer_id=visitor.customer.id if visitor.customer else None,
            handover=opening_facts(reason, visitor.customer, visitor.identity.reason),
            # A signed-in customer's replies can reach them by e-mail when they leave the chat.
            contact_email=visitor.customer.email if visitor.customer else None,
        )
        try:
            opened = open_ticket(self.store, request, now)
        except StoreError as error:
            logger.error("handoff: ticket for a %s visitor could not be stored: %s", reason.value, error)
            return TicketOutcome(None, False, rules, working, opening, failed=True)
        if opened.created:
            logger.info("handoff: opened ticket %s (%s, %s)", opened.ticket.number, reason.value, rules.priority)
        try:
            online = agents_online(self.store, now)
            ahead = queue_ahead(self.store, opened.ticket)
        except StoreError as error:
            logger.error("handoff: who is online and the queue could not be read: %s", error)
            online, ahead = 0, 0
        return TicketOutcome(opened.ticket, opened.created, rules, working, opening,
                             agents_online=online, queue_ahead=ahead)

    def tickets_of(self, conversation_id: str, visitor: Visitor, limit: int = 5) -> List[TicketRecord]:
        """The visitor's recent tickets: the customer's, or this conversation's for anonymous visitors."""
        if visitor.customer is not None:
            return tickets_for_customer(self.store, visitor.customer.id, limit=limit)
        return tickets_for_conversation(self.store, conversation_id)[:limit]


class Promise(str, Enum):
    """What the visitor can be promised when a ticket opens (the ``promise`` of the handoff payload)."""

    PRIORITY = "priority"  # always staffed, an agent is signed in and free: within the target, e.g. 5 minutes
    PRIORITY_BUSY = "priority_busy"  # always staffed, but every agent signed in has a ticket ahead of it
    NO_AGENT = "no_agent"  # always staffed by the policy, but nobody is signed in: on-call alerted, no minutes promised
    BUSINESS = "business"  # within business hours, someone signed in: the target, in business hours
    BUSINESS_NO_AGENT = "business_no_agent"  # within business hours, nobody signed in right now: the due time
    OUT_OF_HOURS = "out_of_hours"  # when the team is back, and the due time
    ALREADY_OPEN = "already_open"


def promise_for(outcome: TicketOutcome) -> Promise:
    """The promise the facts allow: the plan's hours (policy), who is signed in, and the queue ahead."""
    if not outcome.created:
        return Promise.ALREADY_OPEN
    if outcome.rules.always_staffed:
        if outcome.agents_online == 0:
            return Promise.NO_AGENT
        # Every agent signed in already has a ticket of the same or a higher priority waiting before this one.
        return Promise.PRIORITY_BUSY if outcome.queue_ahead >= outcome.agents_online else Promise.PRIORITY
    if not outcome.agents_working:
        return Promise.OUT_OF_HOURS
    return Promise.BUSINESS if outcome.agents_online > 0 else Promise.BUSINESS_NO_AGENT


def reply_promise(outcome: TicketOutcome, policy: SupportPolicy) -> Dict[str, Any]:
    """The words that fill the ticket-opened messages: number, reply time, hours, next opening, due time,
    agents signed in (``agents``) and tickets waiting ahead (``ahead``), the last two as numbers."""
    ticket = outcome.ticket
    return {
        "ticket": ticket.number if ticket else "",
        "reply_time": outcome.rules.describe_first_reply(),
        "hours": policy.describe_hours() if policy.business_hours is not None else "",
        "opens_at": policy.describe_moment(outcome.next_opening),
        "due": policy.describe_moment(ticket.sla_due_at) if ticket else "",
        "agents": outcome.agents_online,
        "ahead": outcome.queue_ahead,
    }
