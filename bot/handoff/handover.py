"""What an agent needs so the visitor never repeats themselves, read from the stored conversation.

The store is the one record of a conversation: the handover is built from its
messages whenever an agent opens the ticket, never copied from Rasa's tracker.
At opening the ticket keeps only what is true of that moment
(``opening_facts``: why, who the customer was, whether their sign-in
verified); the rest comes from the messages up to the turn that handed the
conversation over: every message the bot could not answer, with the model's
guesses that the bot stored on its own reply, and every article it showed.
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, TypedDict

from bot.protocol import FALLBACK_KINDS, MessageKind, Priority, Sender, TicketReason, payload_of
from bot.reports.labels import reason_label
from bot.store.customers import CustomerRecord
from bot.store.messages import MessageRecord
from bot.store.tickets import TicketRecord


class FailedMessage(TypedDict):
    """A visitor message the bot could not answer and what the model guessed it was."""

    text: str
    intents: List[Dict[str, Any]]  # [{"name", "confidence"}], best first, at most three
    articles: List[Dict[str, Any]]  # [{"article_id", "confidence"}], best first, at most three


class Handover(TypedDict):
    """The handover as the inbox receives it (``GET /agent/api/tickets/{id}``)."""

    reason: str  # a TicketReason value
    customer: Dict[str, Any]  # customer_summary: {"anonymous": True} or the customer's plan and dates
    identity: str  # why a visitor is anonymous ("no token", "expired", ...), or "verified"
    failed_messages: List[FailedMessage]
    articles_shown: List[str]
    # How many of the visitor's messages in a row the bot was unsure of when it handed over (0 when
    # that was not why), and why it handed over in words that say what happened ("Bot unsure of one
    # message: a priority plan is handed over at the first").
    unsure_in_a_row: int
    summary: str


def customer_summary(customer: Optional[CustomerRecord]) -> Dict[str, Any]:
    """The customer as the agent sees them (anonymous when the bot does not know who it is)."""
    if customer is None:
        return {"anonymous": True}
    return {
        "anonymous": False,
        "id": customer.id,
        "email": customer.email,
        "name": customer.name,
        "plan": customer.plan,
        "status": customer.status,
        "billing_period": customer.billing_period,
        "renews_at": customer.renews_at.isoformat() if customer.renews_at else None,
        "trial_ends_at": customer.trial_ends_at.isoformat() if customer.trial_ends_at else None,
    }


def opening_facts(reason: TicketReason, customer: Optional[CustomerRecord], identity_note: str) -> Dict[str, Any]:
    """What the ticket keeps of the moment it opened (``tickets.handover``): reason, customer, identity."""
    return {"reason": reason.value, "customer": customer_summary(customer), "identity": identity_note}


def _handed_over_at(messages: Sequence[MessageRecord], ticket_id: int) -> int:
    """How many messages lead up to the ticket: up to the bot's handoff message naming it (all when none does)."""
    for index, message in enumerate(messages):
        payload = payload_of(message.payload or {})
        if payload.get("type") == MessageKind.HANDOFF.value and payload.get("ticket") == ticket_id:
            return index + 1
    return len(messages)


def _guesses(payload: Mapping[str, Any]) -> Dict[str, List[Dict[str, Any]]]:
    found = payload.get("guesses")
    guesses: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    return {
        "intents": [dict(g) for g in guesses.get("intents") or [] if isinstance(g, Mapping)],
        "articles": [dict(g) for g in guesses.get("articles") or [] if isinstance(g, Mapping)],
    }


def failed_messages(messages: Sequence[MessageRecord]) -> List[FailedMessage]:
    """The visitor's messages the bot could not answer (it offered choices, asked to rephrase, or
    handed over instead), each with the guesses the bot stored on that reply."""
    fallback = {kind.value for kind in FALLBACK_KINDS}
    failures: List[FailedMessage] = []
    last_visitor: Optional[MessageRecord] = None
    for message in messages:
        if message.sender == Sender.VISITOR.value:
            last_visitor = message
            continue
        payload = payload_of(message.payload or {})
        unanswered = payload.get("type") in fallback or (
            payload.get("type") == MessageKind.HANDOFF.value and "guesses" in payload
        )
        if message.sender == Sender.BOT.value and last_visitor is not None and unanswered:
            guesses = _guesses(payload)
            failures.append({"text": last_visitor.text, "intents": guesses["intents"], "articles": guesses["articles"]})
            last_visitor = None
    return failures


def articles_shown(messages: Sequence[MessageRecord]) -> List[str]:
    """Every article the bot answered or offered, in order, without repeats."""
    shown: List[str] = []
    for message in messages:
        if message.sender != Sender.BOT.value:
            continue
        payload = payload_of(message.payload or {})
        for article_id in [payload.get("article_id"), *(payload.get("article_ids") or [])]:
            if isinstance(article_id, str) and article_id and article_id not in shown:
                shown.append(article_id)
    return shown


def unsure_in_a_row(messages: Sequence[MessageRecord]) -> int:
    """How many of the visitor's messages in a row the bot could not answer when it handed over, from the
    conversation up to the handover (``messages``): its fallbacks since its last answer from an article or
    an earlier handoff, and the handoff itself when it replaced one (it carries the model's guesses), as
    the action server counts them."""
    fallback = {kind.value for kind in FALLBACK_KINDS}
    count, at_handoff = 0, None
    for message in messages:
        if message.sender != Sender.BOT.value:
            continue
        payload = payload_of(message.payload or {})
        kind = payload.get("type")
        at_handoff = None
        if kind in fallback:
            count += 1
        elif kind == MessageKind.HANDOFF.value:
            at_handoff = count + 1 if "guesses" in payload else count
            count = 0  # a handoff starts the count again (a later ticket counts its own)
        elif kind == MessageKind.ARTICLE.value:
            count = 0
    return at_handoff if at_handoff is not None else count


def reason_summary(reason: str, unsure: int, priority: str) -> str:
    """Why the bot handed over, saying only what happened: for an unsure bot, of how many messages in a
    row (``unsure``; a ``priority`` "high" ticket after one: its plan hands over at the first); other
    reasons as the reports name them."""
    if reason != TicketReason.LOW_CONFIDENCE.value:
        return reason_label(reason)
    if unsure <= 0:
        return reason_label(reason)
    if unsure == 1:
        first = ": a priority plan is handed over at the first" if priority == Priority.HIGH.value else ""
        return f"Bot unsure of one message{first}"
    return "Bot unsure twice in a row" if unsure == 2 else f"Bot unsure {unsure} times in a row"


def build_handover(ticket: TicketRecord, messages: Sequence[MessageRecord]) -> Handover:
    """The handover of ``ticket`` from its conversation's stored ``messages`` (oldest first)."""
    facts: Dict[str, Any] = ticket.handover or {}
    before = messages[: _handed_over_at(messages, ticket.id)]
    reason = str(facts.get("reason") or ticket.reason)
    unsure = unsure_in_a_row(before) if reason == TicketReason.LOW_CONFIDENCE.value else 0
    return {
        "reason": reason,
        "customer": dict(facts.get("customer") or {"anonymous": True}),
        "identity": str(facts.get("identity") or ""),
        "failed_messages": failed_messages(before),
        "articles_shown": articles_shown(before),
        "unsure_in_a_row": unsure,
        "summary": reason_summary(reason, unsure, ticket.priority),
    }
