"""Bot messages about tickets, for the action server (keyword arguments for ``dispatcher.utter_message``).

Wording lives in domain.yml; this module picks the response and fills in
the ticket number and times from the support policy. The first message of
a handoff carries the machine-readable ``handoff`` payload (bot.protocol)
for the gateway, the eval command and the agent's handover.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from bot.handoff.policy import SupportPolicy
from bot.handoff.service import Promise, TicketOutcome, Visitor, promise_for, reply_promise
from bot.protocol import PAYLOAD_KEY, Guesses, HandoffPayload
from bot.store.tickets import TicketRecord

Message = Dict[str, Any]

LOOKUP_PROBLEM_RESPONSES = {
    "unknown_customer": "utter_account_not_found",
    "store_unavailable": "utter_account_lookup_failed",
}


def handoff_payload(
    ticket: TicketRecord, created: bool, outcome: Optional[TicketOutcome] = None, guesses: Optional[Guesses] = None
) -> HandoffPayload:
    """The payload naming the ticket a conversation was handed to, the reply promise, and (when the
    ticket replaced suggestions) the model's guesses for the message, kept for the agent."""
    payload: HandoffPayload = {
        "type": "handoff",
        "ticket": ticket.id,
        "priority": ticket.priority,
        "status": ticket.status,
        "sla_due_at": ticket.sla_due_at.isoformat(),
        "created": created,
        "email_on_file": ticket.contact_email is not None,
    }
    if outcome is not None:
        payload["reply_time"] = outcome.rules.describe_first_reply()
        payload["agents_working"] = outcome.agents_working
        payload["promise"] = promise_for(outcome).value
        payload["agents_online"] = outcome.agents_online
        payload["queue_ahead"] = outcome.queue_ahead
    if guesses is not None:
        payload["guesses"] = guesses
    return payload


PROMISE_RESPONSES = {
    Promise.ALREADY_OPEN: "utter_ticket_already_open",
    Promise.PRIORITY: "utter_ticket_opened_priority",
    Promise.PRIORITY_BUSY: "utter_ticket_opened_priority_busy",
    Promise.NO_AGENT: "utter_ticket_opened_priority_no_agent",
    Promise.BUSINESS: "utter_ticket_opened",
    Promise.BUSINESS_NO_AGENT: "utter_ticket_opened_no_agent",
    Promise.OUT_OF_HOURS: "utter_ticket_opened_out_of_hours",
}
# Nobody signed in and the policy names no on-call people for this priority: nobody can be alerted.
NO_AGENT_NOBODY_ON_CALL = "utter_ticket_opened_priority_no_agent_no_on_call"


def ticket_messages(outcome: TicketOutcome, policy: SupportPolicy, guesses: Optional[Guesses] = None) -> List[Message]:
    """What the visitor is told once the bot tried to open a ticket: one message, the promise the facts
    allow (``promise_for``: the plan's hours, the agents signed in, the queue ahead), with the handoff
    payload (which carries the agents online and the queue ahead for the widget's banner)."""
    ticket = outcome.ticket
    if outcome.failed or ticket is None:
        return [{"response": "utter_ticket_failed"}]
    words = reply_promise(outcome, policy)
    promise = promise_for(outcome)
    response = PROMISE_RESPONSES[promise]
    if promise is Promise.NO_AGENT and not (policy.on_call and policy.on_call.watches(ticket.priority)):
        response = NO_AGENT_NOBODY_ON_CALL
    payload = handoff_payload(ticket, outcome.created, outcome, guesses)
    return [{"response": response, **words, "json_message": {PAYLOAD_KEY: payload}}]


def lookup_problem_message(visitor: Visitor) -> Optional[Message]:
    """A word to the visitor when their sign-in could not be used (unknown customer, store down)."""
    response = LOOKUP_PROBLEM_RESPONSES.get(visitor.lookup_problem or "")
    return {"response": response} if response else None
