"""Readable names for the codes the reports count by: ticket reasons and plans.

Reasons are Deskmate's own (``bot.protocol.TicketReason``); plans are the
business's (kb/support_policy.yml, the customer records), shown as their
name in words: "premium" is "Premium", "pay_as_you_go" is "Pay as you go".
"""
from __future__ import annotations

from bot.protocol import TicketReason

REASON_LABELS = {
    TicketReason.REQUESTED.value: "Asked for a person",
    # Once for a priority plan, twice in a row for the others (bot/handoff/rules.py): the count is the
    # ticket's own (bot/handoff/handover.py, reason_summary), never assumed here.
    TicketReason.LOW_CONFIDENCE.value: "Bot unsure",
    TicketReason.PROBLEM.value: "Problem answered, priority plan",
    TicketReason.NOT_HELPFUL.value: "Answer did not help",
    TicketReason.BOT_UNAVAILABLE.value: "Bot unavailable",
}
# Visitors nobody identified have the plan "anonymous" (kb/support_policy.yml).
ANONYMOUS_PLAN = "anonymous"


def _words(code: str) -> str:
    text = " ".join(code.replace("_", " ").replace("-", " ").split())
    return text[:1].upper() + text[1:] if text else "(none)"


def reason_label(code: str) -> str:
    """A ticket reason in words ("requested" -> "Asked for a person"); an unknown code in words too."""
    return REASON_LABELS.get(code, _words(code))


def plan_label(code: str) -> str:
    """A plan in words ("premium" -> "Premium", "anonymous" -> "Not signed in")."""
    return "Not signed in" if code == ANONYMOUS_PLAN else _words(code)
