"""Record whether an answer helped; when it did not, offer more (a person at once for high-priority plans)."""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.handoff import hand_off
from actions.runtime import answerer, handoff
from bot.dialogue.messages import suggestion_messages
from bot.handoff.service import Trouble
from bot.store.database import StoreError
from bot.store.feedback import record_feedback

logger = logging.getLogger(__name__)

HELPFUL_INTENTS = {"feedback_helpful", "affirm"}


class ActionRecordFeedback(Action):
    """Store the verdict on the last answer; when it did not help, offer more."""

    def name(self) -> Text:
        return "action_record_feedback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        service = answerer()
        helpful = (tracker.get_intent_of_latest_message() or "") in HELPFUL_INTENTS
        article_id: Optional[str] = next(tracker.get_latest_entity_values("article_id"), None) or tracker.get_slot(
            "last_article"
        )
        try:
            await asyncio.to_thread(
                record_feedback, service.settings.resolved_database_url(), tracker.sender_id, article_id, helpful
            )
        except StoreError:
            logger.warning("feedback for a conversation was not stored")

        if helpful:
            dispatcher.utter_message(response="utter_glad_it_helped")
            return [SlotSet("awaiting_feedback", False)]

        people = handoff()
        visitor = await asyncio.to_thread(people.visitor, tracker.latest_message.get("metadata"))
        if people.rules_for(visitor).escalates_at_once:
            # Plans that escalate at once: an answer that did not help is trouble enough.
            return await hand_off(dispatcher, tracker, people, visitor, Trouble.NOT_HELPFUL)
        article = service.kb.get(article_id) if article_id else None
        related = [service.kb.get(rid) for rid in (article.related if article else ())]
        for message in suggestion_messages("utter_sorry_not_helpful", [a for a in related if a][:2], kind="related"):
            dispatcher.utter_message(**message)
        return [SlotSet("awaiting_feedback", False)]
