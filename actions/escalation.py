"""Shared by the actions: who the visitor is, and handing the conversation to the team."""
from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.runtime import answerer
from bot.dialogue.messages import article_answer
from bot.handoff.messages import lookup_problem_message, ticket_messages
from bot.handoff.service import HandoffService, Visitor
from bot.protocol import Guesses, TicketReason

CONTACT_ROLE = "contact"


def low_confidence_turns(tracker: Tracker) -> int:
    """How many of the visitor's latest questions in a row the bot could not answer."""
    return int(tracker.get_slot("low_confidence_turns") or 0)


def metadata(tracker: Tracker) -> Optional[Dict[str, Any]]:
    """The latest message's metadata (the visitor's identity token, when the gateway verified one)."""
    return tracker.latest_message.get("metadata")


async def identify(dispatcher: CollectingDispatcher, tracker: Tracker, service: HandoffService) -> Visitor:
    """The visitor of the latest message; tells them when their sign-in could not be used."""
    visitor = await asyncio.to_thread(service.visitor, metadata(tracker))
    notice = lookup_problem_message(visitor)
    if notice:
        dispatcher.utter_message(**notice)
    return visitor


async def hand_off(
    dispatcher: CollectingDispatcher,
    tracker: Tracker,
    service: HandoffService,
    visitor: Visitor,
    reason: TicketReason,
    guesses: Optional[Guesses] = None,
) -> List[EventType]:
    """Open (or find) the conversation's ticket and tell the visitor what happens next.

    ``guesses``: the model's guesses for the latest message, when the ticket
    replaces the suggestions the bot would have offered (kept for the agent).
    From then on the gateway routes the visitor's messages to the team.
    """
    notice = lookup_problem_message(visitor)
    if notice:
        dispatcher.utter_message(**notice)
    outcome = await asyncio.to_thread(service.open_ticket, tracker.sender_id, visitor, reason)
    for message in ticket_messages(outcome, service.policy, guesses):
        dispatcher.utter_message(**message)
    if outcome.ticket is None:
        # Told plainly that it failed: show how to reach the team another way.
        contact = answerer().kb.with_role(CONTACT_ROLE)
        if contact is not None:
            dispatcher.utter_message(**article_answer(contact, kind="contact"))
    return [SlotSet("low_confidence_turns", 0.0), SlotSet("awaiting_feedback", False)]
