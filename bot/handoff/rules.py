"""When the bot steps aside: the one decision every escalation path goes through.

The rules (the issue "Human handoff tickets"), for what just happened in a
conversation (a ``Signal``) and the visitor's plan (``PlanPolicy``):

(a) the visitor asks for a person: a ticket ("not_helpful" when they ask right
    after saying an answer did not help, else "requested");
(b) plans that do not escalate at once: the bot's confidence drops twice in a
    row (the first time it offers the closest articles);
(c) plans that escalate at once (high priority): the first sign of trouble,
    a low-confidence message, a problem article answered, an answer that did
    not help;
(d) the bot is unreachable: a person must follow up.

Priority and the first-reply due time come from the support policy
(kb/support_policy.yml), never from asking the visitor.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Optional

from bot.handoff.policy import PlanPolicy
from bot.protocol import TicketReason

# Low-confidence messages in a row before a ticket opens, for plans that do not escalate at once.
LOW_CONFIDENCE_LIMIT = 2


class Signal(str, Enum):
    """What just happened that may call for a person."""

    ASKED_FOR_PERSON = "asked_for_person"
    UNSURE = "unsure"  # the bot offered suggestions or asked to rephrase
    PROBLEM_ANSWERED = "problem_answered"  # an article flagged ``problem`` was answered
    NOT_HELPFUL = "not_helpful"  # the visitor said an answer did not help
    BOT_UNREACHABLE = "bot_unreachable"


@dataclass(frozen=True)
class Situation:
    """A signal with what the rules need to know about the conversation so far.

    ``unsure_in_a_row``: messages in a row the bot could not answer, this one
    included; ``after_not_helpful``: the visitor's previous message said an
    answer did not help.
    """

    signal: Signal
    unsure_in_a_row: int = 0
    after_not_helpful: bool = False


def should_open_ticket(situation: Situation, rules: PlanPolicy) -> Optional[TicketReason]:
    """The reason of the ticket to open now for ``situation`` under ``rules``, or None (the bot carries on)."""
    signal = situation.signal
    if signal is Signal.ASKED_FOR_PERSON:
        return TicketReason.NOT_HELPFUL if situation.after_not_helpful else TicketReason.REQUESTED
    if signal is Signal.BOT_UNREACHABLE:
        return TicketReason.BOT_UNAVAILABLE
    if signal is Signal.UNSURE:
        if rules.escalates_at_once or situation.unsure_in_a_row >= LOW_CONFIDENCE_LIMIT:
            return TicketReason.LOW_CONFIDENCE
        return None
    if not rules.escalates_at_once:
        return None
    return TicketReason.PROBLEM if signal is Signal.PROBLEM_ANSWERED else TicketReason.NOT_HELPFUL
