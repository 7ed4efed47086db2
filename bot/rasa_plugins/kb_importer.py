"""A Rasa TrainingDataImporter that reads kb/ directly.

Named in config.yml under ``importers:`` beside RasaFileImporter, so that
``rasa train``, ``rasa test`` and ``rasa data validate`` see every article as
the retrieval intent ``faq/<id>`` (its phrasings) with the response
``utter_faq/<id>``. No generated file exists to keep in sync.

The response text is the article's title, not its answer: answers are served
from kb/ at run time by the action server, so editing an answer changes no
training data and needs no retraining.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Text, Union

from rasa.shared.core.domain import Domain
from rasa.shared.core.training_data.structures import StoryGraph
from rasa.shared.importers.importer import TrainingDataImporter
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.kb.articles import Article, load_articles
from bot.protocol import article_intent


def article_response(article_id: str) -> str:
    """The response name of an article, e.g. ``utter_faq/double-charge``."""
    return f"utter_{article_intent(article_id)}"


def training_data_from_articles(articles: List[Article]) -> TrainingData:
    """Phrasings as ``faq/<id>`` examples and one ``utter_faq/<id>`` response each."""
    examples = [
        Message.build(text=question, intent=article_intent(article.id))
        for article in articles
        for question in article.questions
    ]
    responses = {article_response(article.id): [{"text": article.title}] for article in articles}
    return TrainingData(training_examples=examples, responses=responses)


class KnowledgeBaseImporter(TrainingDataImporter):
    """Yields the knowledge base as NLU training data; everything else comes from data/."""

    def __init__(
        self,
        config_file: Optional[Text] = None,
        domain_path: Optional[Text] = None,
        training_data_paths: Optional[Union[List[Text], Text]] = None,
        kb_dir: Text = "kb",
        **kwargs: Any,
    ) -> None:
        # DESKMATE_KB_DIR (the settings' kb_dir) wins, so that training reads the
        # articles the action server answers from; else kb_dir from config.yml,
        # relative to the config file (a copy of the project reads its own kb/).
        base = Path(config_file).resolve().parent if config_file else Path.cwd()
        path = Path(os.environ.get("DESKMATE_KB_DIR") or kb_dir)
        self._kb_dir = path if path.is_absolute() else base / path

    def get_domain(self) -> Domain:
        """No domain of its own: Rasa derives the retrieval actions from the responses."""
        return Domain.empty()

    def get_stories(self, exclusion_percentage: Optional[int] = None) -> StoryGraph:
        """No stories: dialogue lives in data/."""
        return StoryGraph([])

    def get_conversation_tests(self) -> StoryGraph:
        """No test stories: those live in tests/."""
        return StoryGraph([])

    def get_config(self) -> Dict:
        """No configuration: config.yml is read by RasaFileImporter."""
        return {}

    def get_config_file_for_auto_config(self) -> Optional[Text]:
        """Auto-config is not used."""
        return None

    def get_nlu_data(self, language: Optional[Text] = "en") -> TrainingData:
        """Every article under kb/ as retrieval-intent training data."""
        return training_data_from_articles(load_articles(self._kb_dir))
