"""Ways to reach a person, until human handoff is built."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.runtime import answerer
from bot.dialogue.messages import article_answer

CONTACT_ROLE = "contact"
EXPLANATIONS = {
    "request_human": "utter_no_handoff_yet",
    "check_subscription": "utter_no_account_lookup_yet",
    "check_ticket_status": "utter_no_ticket_lookup_yet",
}


class ActionContactSupport(Action):
    """Say plainly what the bot cannot do yet, then how to reach the support team."""

    def name(self) -> Text:
        return "action_contact_support"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        intent = tracker.get_intent_of_latest_message() or "request_human"
        dispatcher.utter_message(response=EXPLANATIONS.get(intent, "utter_no_handoff_yet"))
        contact = answerer().kb.with_role(CONTACT_ROLE)
        if contact is not None:
            dispatcher.utter_message(**article_answer(contact, kind="contact"))
        return [SlotSet("awaiting_feedback", False)]
