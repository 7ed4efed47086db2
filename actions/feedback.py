"""Record whether an answer helped."""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.runtime import answerer
from bot.dialogue.messages import suggestion_messages
from bot.store.database import StoreUnavailableError
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
        except StoreUnavailableError:
            logger.warning("feedback for %s was not stored", tracker.sender_id)

        if helpful:
            dispatcher.utter_message(response="utter_glad_it_helped")
        else:
            article = service.kb.get(article_id) if article_id else None
            related = [service.kb.get(rid) for rid in (article.related if article else ())]
            for message in suggestion_messages("utter_sorry_not_helpful", [a for a in related if a][:2]):
                dispatcher.utter_message(**message)
        return [SlotSet("awaiting_feedback", False)]
