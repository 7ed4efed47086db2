"""Answer a question from the knowledge base, or offer the closest articles; step aside when that fails."""
from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.escalation import hand_off, low_confidence_turns, metadata
from actions.runtime import answerer, handoff
from bot.dialogue.answering import Answer, ParsedMessage, Rephrase, Suggest
from bot.dialogue.messages import article_answer, decision_messages, out_of_scope_refusal
from bot.handoff.rules import Signal, Situation, should_open_ticket
from bot.protocol import RETRIEVAL_INTENT, trained_article_ids


class ActionAnswerFaq(Action):
    """``faq`` intent: answer the selected article only when sure, else suggest; hand off per the rules."""

    def name(self) -> Text:
        return "action_answer_faq"

    def parsed(self, tracker: Tracker) -> ParsedMessage:
        """The NLU reading of the message to answer."""
        return ParsedMessage.from_parse_data(tracker.latest_message)

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        service = answerer()
        parsed = self.parsed(tracker)
        # Only the serving model's articles: one saved in kb/ since then has not passed the checks.
        decision = service.decide(parsed, answerable=trained_article_ids(domain))
        unsure = isinstance(decision, (Suggest, Rephrase))
        unanswered = low_confidence_turns(tracker)
        if unsure:
            unanswered += 1
        elif isinstance(decision, Answer):
            unanswered = 0
        counter: List[EventType] = [SlotSet("low_confidence_turns", float(unanswered))]

        situation: Optional[Situation] = None
        if unsure:
            situation = Situation(Signal.UNSURE, unsure_in_a_row=unanswered)
        elif isinstance(decision, Answer) and decision.article.problem:
            situation = Situation(Signal.PROBLEM_ANSWERED)
        # Who the visitor is matters only when something went wrong: no lookup on a plain answer.
        if situation is not None:
            people = handoff()
            visitor = await asyncio.to_thread(people.visitor, metadata(tracker))
            reason = should_open_ticket(situation, people.rules_for(visitor))
            if reason is not None:
                if isinstance(decision, Answer):
                    # The answer is shown while the agent is on the way.
                    dispatcher.utter_message(**article_answer(decision.article))
                guesses = parsed.guesses() if unsure else None
                return counter + await hand_off(dispatcher, tracker, people, visitor, reason, guesses)

        for message in decision_messages(decision, service.settings.max_message_chars, parsed.guesses()):
            dispatcher.utter_message(**message)
        if isinstance(decision, Answer):
            return counter + [SlotSet("last_article", decision.article.id), SlotSet("awaiting_feedback", True)]
        return counter + [SlotSet("awaiting_feedback", False)]


class ActionSuggestArticles(ActionAnswerFaq):
    """``nlu_fallback``: the same decision; below the threshold it never answers."""

    def name(self) -> Text:
        return "action_suggest_articles"


class ActionOutOfScope(ActionAnswerFaq):
    """``out_of_scope``: a message that names the service itself is a question about it, answered (or
    offered the closest articles) by the same decision as ``faq``; anything else gets the polite refusal.

    The out-of-scope examples (data/nlu) teach the classifier other companies' cancel, refund and
    password questions, so a run-on about the service that mentions another one can land there too.
    """

    def name(self) -> Text:
        return "action_out_of_scope"

    def parsed(self, tracker: Tracker) -> ParsedMessage:
        return replace(super().parsed(tracker), intent=RETRIEVAL_INTENT)

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        text = str(tracker.latest_message.get("text") or "")
        if answerer().scope.current().names_own(text):
            return await super().run(dispatcher, tracker, domain)
        dispatcher.utter_message(**out_of_scope_refusal())
        return []
