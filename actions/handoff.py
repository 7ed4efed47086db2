"""Tickets: a person on request, the visitor's subscription and tickets, and quiet while the team has it."""
from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.runtime import answerer, handoff
from bot.dialogue.messages import article_answer
from bot.handoff.handover import pending_bot_events
from bot.handoff.messages import PAYLOAD_KEY, lookup_problem_message, ticket_messages
from bot.handoff.service import HandoffService, Trouble, Visitor
from bot.store.database import StoreError

CONTACT_ROLE = "contact"
# Intents the bot answers from the knowledge base once the team hands the conversation back.
ANSWERABLE_INTENTS = ("faq", "nlu_fallback")


def low_confidence_turns(tracker: Tracker) -> int:
    """How many of the visitor's latest questions in a row the bot could not answer."""
    return int(tracker.get_slot("low_confidence_turns") or 0)


def previous_user_intent(tracker: Tracker) -> Optional[str]:
    """The intent of the visitor's message before the latest one."""
    users = [event for event in tracker.events if event.get("event") == "user"]
    if len(users) < 2:
        return None
    return ((users[-2].get("parse_data") or {}).get("intent") or {}).get("name")


async def identify(dispatcher: CollectingDispatcher, tracker: Tracker, service: HandoffService) -> Visitor:
    """The visitor of the latest message; tells them when their sign-in could not be used."""
    visitor = await asyncio.to_thread(service.visitor, tracker.latest_message.get("metadata"))
    notice = lookup_problem_message(visitor)
    if notice:
        dispatcher.utter_message(**notice)
    return visitor


async def hand_off(
    dispatcher: CollectingDispatcher, tracker: Tracker, service: HandoffService, visitor: Visitor, trouble: Trouble
) -> List[EventType]:
    """Open (or find) the conversation's ticket and tell the visitor what happens next."""
    notice = lookup_problem_message(visitor)
    if notice:
        dispatcher.utter_message(**notice)
    # What the bot already said this turn (an article shown while the agent comes) is not in the tracker yet.
    events = list(tracker.events) + pending_bot_events(dispatcher.messages)
    outcome = await asyncio.to_thread(service.open_ticket, tracker.sender_id, visitor, trouble, events)
    for message in ticket_messages(outcome, service.policy):
        dispatcher.utter_message(**message)
    if outcome.ticket is None:
        # Told plainly that it failed: show how to reach the team another way.
        contact = answerer().kb.with_role(CONTACT_ROLE)
        if contact is not None:
            dispatcher.utter_message(**article_answer(contact, kind="contact"))
        return [SlotSet("awaiting_feedback", False)]
    return [
        SlotSet("ticket_open", True),
        SlotSet("ticket_number", outcome.ticket.number),
        SlotSet("low_confidence_turns", 0.0),
        SlotSet("awaiting_feedback", False),
    ]


class ActionRequestHuman(Action):
    """The visitor asks for a person: a ticket, whatever their plan."""

    def name(self) -> Text:
        return "action_request_human"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        service = handoff()
        visitor = await asyncio.to_thread(service.visitor, tracker.latest_message.get("metadata"))
        came_after_bad_answer = previous_user_intent(tracker) == "feedback_not_helpful"
        trouble = Trouble.NOT_HELPFUL if came_after_bad_answer else Trouble.REQUESTED
        return await hand_off(dispatcher, tracker, service, visitor, trouble)


class ActionWithTeam(Action):
    """While a ticket is open the bot does not answer in the agent's place."""

    def name(self) -> Text:
        return "action_with_team"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        service = handoff()
        ticket = await asyncio.to_thread(service.current_ticket, tracker.sender_id)
        if ticket is None:
            # The team resolved it (or handed it back) since: the bot is back, and
            # answers this message rather than making the visitor repeat it.
            from actions.answers import ActionAnswerFaq  # (actions.answers imports this module)

            dispatcher.utter_message(response="utter_ticket_closed", ticket=tracker.get_slot("ticket_number") or "")
            events: List[Dict[Text, Any]] = [SlotSet("ticket_open", False), SlotSet("ticket_number", None)]
            if tracker.get_intent_of_latest_message() in ANSWERABLE_INTENTS:
                return events + await ActionAnswerFaq().run(dispatcher, tracker, domain)
            dispatcher.utter_message(response="utter_ok")
            return events
        dispatcher.utter_message(response="utter_with_team", ticket=ticket.number)
        return []


class ActionCheckSubscription(Action):
    """A signed-in customer's plan, price, billing period, status and next date, from the store."""

    def name(self) -> Text:
        return "action_check_subscription"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        service = handoff()
        visitor = await identify(dispatcher, tracker, service)
        customer = visitor.customer
        if customer is None:
            dispatcher.utter_message(response="utter_sign_in_to_see_subscription")
            return []
        policy = service.policy
        price = f"{customer.price} {customer.currency}"
        period = customer.billing_period or ""
        now = service.now()
        if customer.status == "active" and customer.in_trial(now) and customer.trial_ends_at:
            next_step = ("utter_subscription_next_trial_end", policy.describe_moment(customer.trial_ends_at))
        elif customer.status == "active" and customer.renews_at:
            next_step = ("utter_subscription_next_renewal", policy.describe_moment(customer.renews_at))
        else:
            next_step = ("utter_subscription_no_renewal", "")
        dispatcher.utter_message(
            response="utter_subscription",
            name=customer.name,
            plan=customer.plan.capitalize(),
            price=price,
            period=period or "no billing",
            status=customer.status,
            json_message={PAYLOAD_KEY: {"type": "subscription", "plan": customer.plan, "status": customer.status}},
        )
        dispatcher.utter_message(response=next_step[0], date=next_step[1])
        return []


class ActionCheckTicketStatus(Action):
    """The visitor's open and recent tickets with their state."""

    def name(self) -> Text:
        return "action_check_ticket_status"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        service = handoff()
        visitor = await identify(dispatcher, tracker, service)
        try:
            tickets = await asyncio.to_thread(service.tickets_of, tracker.sender_id, visitor)
        except StoreError:
            dispatcher.utter_message(response="utter_tickets_unavailable")
            return []
        if not tickets:
            dispatcher.utter_message(
                response="utter_no_tickets" if visitor.customer else "utter_no_tickets_sign_in"
            )
            return []
        lines = [
            f"{t.number}: {t.status}, opened {service.policy.describe_moment(t.created_at)}"
            + (f", with {t.assignee}" if t.assignee and t.status != "resolved" else "")
            for t in tickets
        ]
        dispatcher.utter_message(
            response="utter_ticket_list",
            tickets="\n".join(lines),
            json_message={PAYLOAD_KEY: {"type": "tickets", "tickets": [{"id": t.id, "status": t.status} for t in tickets]}},
        )
        return []
