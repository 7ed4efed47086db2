"""Answer a question from the knowledge base, or offer the closest articles."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.runtime import answerer
from bot.dialogue.answering import Answer, ParsedMessage
from bot.dialogue.messages import decision_messages


class ActionAnswerFaq(Action):
    """``faq`` intent: answer the selected article only when sure, else suggest."""

    def name(self) -> Text:
        return "action_answer_faq"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        service = answerer()
        decision = service.decide(ParsedMessage.from_parse_data(tracker.latest_message))
        for message in decision_messages(decision, service.settings.max_message_chars):
            dispatcher.utter_message(**message)
        if isinstance(decision, Answer):
            return [SlotSet("last_article", decision.article.id), SlotSet("awaiting_feedback", True)]
        return [SlotSet("awaiting_feedback", False)]


class ActionSuggestArticles(ActionAnswerFaq):
    """``nlu_fallback``: the same decision; below the threshold it never answers."""

    def name(self) -> Text:
        return "action_suggest_articles"
