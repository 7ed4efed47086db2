"""Record whether an answer helped; when it did not, offer more (a person at once for high-priority plans)."""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.escalation import hand_off, metadata
from actions.runtime import answerer, handoff, store
from bot.dialogue.messages import suggestion_messages
from bot.handoff.rules import Signal, Situation, should_open_ticket
from bot.protocol import trained_article_ids
from bot.store.database import StoreError
from bot.store.feedback import record_feedback

logger = logging.getLogger(__name__)

HELPFUL_INTENTS = {"feedback_helpful", "affirm", "thank"}
# Thanks for an answer is a verdict as well (issue 15: "cheers, that sorted it"), and is thanked back.
THANKS_INTENTS = {"thank"}


class ActionRecordFeedback(Action):
    """Store the verdict on the last answer (once per answer; never for an article not answered here);
    when it did not help, offer more."""

    def name(self) -> Text:
        return "action_record_feedback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        service = answerer()
        people = handoff()
        intent = tracker.get_intent_of_latest_message() or ""
        helpful = intent in HELPFUL_INTENTS
        thanks = intent in THANKS_INTENTS
        article_id: Optional[str] = next(tracker.get_latest_entity_values("article_id"), None) or tracker.get_slot(
            "last_article"
        )
        try:
            verdict = await asyncio.to_thread(record_feedback, store(), tracker.sender_id, article_id, helpful, people.now())
        except StoreError:
            logger.warning("feedback for a conversation was not stored")
        else:
            if verdict is None:
                # No answer of that article in this conversation (a typed or forged verdict):
                # nothing is recorded, and a plain yes or no gets a plain answer.
                plain = "utter_you_are_welcome" if thanks else "utter_ok" if helpful else "utter_deny_ack"
                dispatcher.utter_message(response=plain)
                return [SlotSet("awaiting_feedback", False)]

        if helpful:
            dispatcher.utter_message(response="utter_welcome_glad_it_helped" if thanks else "utter_glad_it_helped")
            return [SlotSet("awaiting_feedback", False)]

        visitor = await asyncio.to_thread(people.visitor, metadata(tracker))
        reason = should_open_ticket(Situation(Signal.NOT_HELPFUL), people.rules_for(visitor))
        if reason is not None:
            return await hand_off(dispatcher, tracker, people, visitor, reason)
        answerable = trained_article_ids(domain)
        article = service.kb.get(article_id) if article_id else None
        related = [service.article(rid, answerable) for rid in (article.related if article else ())]
        for message in suggestion_messages("utter_sorry_not_helpful", [a for a in related if a][:2], kind="related"):
            dispatcher.utter_message(**message)
        return [SlotSet("awaiting_feedback", False)]
