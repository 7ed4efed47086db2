"""A person on request, and what the store knows of the visitor: their subscription and their tickets."""
from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.escalation import hand_off, identify, metadata
from actions.runtime import handoff
from bot.handoff.rules import Signal, Situation, should_open_ticket
from bot.protocol import PAYLOAD_KEY, SubscriptionPayload, TicketsPayload
from bot.store.database import StoreError
from bot.store.staff import staff_names


def previous_user_intent(tracker: Tracker) -> Optional[str]:
    """The intent of the visitor's message before the latest one."""
    users = [event for event in tracker.events if event.get("event") == "user"]
    if len(users) < 2:
        return None
    return ((users[-2].get("parse_data") or {}).get("intent") or {}).get("name")


class ActionRequestHuman(Action):
    """The visitor asks for a person: a ticket, whatever their plan."""

    def name(self) -> Text:
        return "action_request_human"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        service = handoff()
        visitor = await asyncio.to_thread(service.visitor, metadata(tracker))
        situation = Situation(
            Signal.ASKED_FOR_PERSON, after_not_helpful=previous_user_intent(tracker) == "feedback_not_helpful"
        )
        reason = should_open_ticket(situation, service.rules_for(visitor))
        assert reason is not None, "asking for a person always opens a ticket"
        return await hand_off(dispatcher, tracker, service, visitor, reason)


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
        now = service.now()
        if customer.status == "active" and customer.in_trial(now) and customer.trial_ends_at:
            next_step = ("utter_subscription_next_trial_end", policy.describe_moment(customer.trial_ends_at))
        elif customer.status == "active" and customer.renews_at:
            next_step = ("utter_subscription_next_renewal", policy.describe_moment(customer.renews_at))
        else:
            next_step = ("utter_subscription_no_renewal", "")
        payload: SubscriptionPayload = {"type": "subscription", "plan": customer.plan, "status": customer.status}
        dispatcher.utter_message(
            response="utter_subscription",
            name=customer.name,
            plan=customer.plan.capitalize(),
            price=f"{customer.price} {customer.currency}",
            period=customer.billing_period or "no billing",
            status=customer.status,
            json_message={PAYLOAD_KEY: payload},
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
            # Visitors are told who has their ticket by display name, never by e-mail.
            names = await asyncio.to_thread(staff_names, service.store, [t.assignee for t in tickets if t.assignee])
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
            + (f", with {names.get(t.assignee, 'an agent')}" if t.assignee and t.status != "resolved" else "")
            for t in tickets
        ]
        payload: TicketsPayload = {"type": "tickets", "tickets": [{"id": t.id, "status": t.status} for t in tickets]}
        dispatcher.utter_message(response="utter_ticket_list", tickets="\n".join(lines), json_message={PAYLOAD_KEY: payload})
        return []
