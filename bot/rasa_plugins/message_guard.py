"""A Rasa NLU component: never classify a message the bot cannot read.

Placed last in the pipeline. An empty message, one longer than
``DESKMATE_MAX_MESSAGE_CHARS``, or one with no letters or digits (emoji
only, control characters) is turned into ``nlu_fallback`` whatever the
classifiers guessed, so no article is ever answered to it; the fallback
action then tells the user what to do.
"""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.constants import DEFAULT_NLU_FALLBACK_INTENT_NAME
from rasa.shared.nlu.constants import (
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message

from bot.dialogue.input_check import input_problem
from bot.settings import get_settings


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class MessageGuard(GraphComponent):
    """Turns unreadable messages into ``nlu_fallback`` with confidence 0."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """No options: the length limit is Deskmate's ``max_message_chars`` setting."""
        return {}

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "MessageGuard":
        """Creates the component (see GraphComponent)."""
        return cls()

    def process(self, messages: List[Message]) -> List[Message]:
        """Override the intent of every unreadable message."""
        max_chars = get_settings().max_message_chars
        for message in messages:
            if input_problem(message.get(TEXT), max_chars) is None:
                continue
            fallback = {INTENT_NAME_KEY: DEFAULT_NLU_FALLBACK_INTENT_NAME, PREDICTED_CONFIDENCE_KEY: 0.0}
            message.data[INTENT] = fallback
            message.data.setdefault(INTENT_RANKING_KEY, [])
            message.data[INTENT_RANKING_KEY].insert(0, dict(fallback))
        return messages
