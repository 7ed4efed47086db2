"""Answer a question from the knowledge base, or offer the closest articles; step aside when that fails."""
from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.handoff import hand_off, low_confidence_turns
from actions.runtime import answerer, handoff
from bot.dialogue.answering import Answer, ParsedMessage, Rephrase, Suggest
from bot.dialogue.messages import article_answer, decision_messages
from bot.handoff.service import Trouble, should_open_ticket


class ActionAnswerFaq(Action):
    """``faq`` intent: answer the selected article only when sure, else suggest; hand off per the rules."""

    def name(self) -> Text:
        return "action_answer_faq"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        service = answerer()
        people = handoff()
        decision = service.decide(ParsedMessage.from_parse_data(tracker.latest_message))

        trouble: Optional[Trouble] = None
        unanswered = low_confidence_turns(tracker)
        if isinstance(decision, (Suggest, Rephrase)):
            unanswered += 1
            trouble = Trouble.LOW_CONFIDENCE
        elif isinstance(decision, Answer):
            unanswered = 0
            trouble = Trouble.PROBLEM if decision.article.problem else None

        # Who the visitor is matters only when something went wrong: no lookup on a plain answer.
        if trouble is not None:
            visitor = await asyncio.to_thread(people.visitor, tracker.latest_message.get("metadata"))
            if should_open_ticket(trouble, people.rules_for(visitor), unanswered):
                if isinstance(decision, Answer):
                    # The answer is shown while the agent is on the way.
                    dispatcher.utter_message(**article_answer(decision.article))
                events: List[EventType] = [SlotSet("low_confidence_turns", float(unanswered))]
                return events + await hand_off(dispatcher, tracker, people, visitor, trouble)

        for message in decision_messages(decision, service.settings.max_message_chars):
            dispatcher.utter_message(**message)
        events = [SlotSet("low_confidence_turns", float(unanswered))]
        if isinstance(decision, Answer):
            return events + [SlotSet("last_article", decision.article.id), SlotSet("awaiting_feedback", True)]
        return events + [SlotSet("awaiting_feedback", False)]


class ActionSuggestArticles(ActionAnswerFaq):
    """``nlu_fallback``: the same decision; below the threshold it never answers."""

    def name(self) -> Text:
        return "action_suggest_articles"
