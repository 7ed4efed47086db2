"""Decide how to reply to a question: answer an article, offer choices, or ask again.

The rule that keeps the bot from being confidently wrong: the ``faq`` intent
scoring high is not enough (the selector may still be unsure which article).
Each candidate article gets a fused score, the response selector's
confidence plus ``search_weight`` times its KB-search similarity (two
independent views of the message), and the best is answered only when its
score clears ``answer_threshold`` and leads the runner-up by
``answer_margin``. Otherwise the closest articles are offered.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Dict, FrozenSet, List, Optional, Tuple, Union

from bot.dialogue.input_check import InputProblem, input_problem
from bot.kb.articles import Article
from bot.kb.library import KnowledgeBase
from bot.kb.product_scope import PRODUCT_SCOPE_FILE, ProductScopeFile
from bot.kb.search import ArticleSearch, SearchHit
from bot.nlu.spacy_pipeline import load_pipeline
from bot.protocol import (
    ARTICLE_ENTITY,
    RETRIEVAL_INTENT,
    ArticleGuess,
    Guesses,
    IntentGuess,
    article_id_from_intent_key,
)
from bot.settings import Settings

# How many search hits take part in the fused score.
FUSION_CANDIDATES = 5
# How many of the model's guesses are kept on a reply for the agent's handover.
GUESSES = 3
DEFAULT_FALLBACK_INTENT = "nlu_fallback"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ParsedMessage:
    """What NLU made of one user message (from a tracker's ``latest_message``)."""

    text: str
    intent: Optional[str]
    intent_confidence: float
    chosen_article_id: Optional[str] = None
    # The response selector's articles with its confidences, best first.
    article_ranking: Tuple[Tuple[str, float], ...] = ()
    # The classifier's intents with their confidences, best first.
    intent_ranking: Tuple[Tuple[str, float], ...] = ()

    @classmethod
    def from_parse_data(cls, data: Dict[str, Any]) -> "ParsedMessage":
        """Read Rasa's parse data (``tracker.latest_message``)."""
        intent = data.get("intent") or {}
        selector = (data.get("response_selector") or {}).get(RETRIEVAL_INTENT) or {}
        ranking = selector.get("ranking") or []
        chosen = next(
            (str(e.get("value")) for e in data.get("entities") or [] if e.get("entity") == ARTICLE_ENTITY),
            None,
        )
        return cls(
            text=data.get("text") or "",
            intent=intent.get("name"),
            intent_confidence=float(intent.get("confidence") or 0.0),
            chosen_article_id=chosen,
            article_ranking=tuple(
                (article_id, float(item.get("confidence") or 0.0))
                for item in ranking
                for article_id in [article_id_from_intent_key(item.get("intent_response_key") or "")]
                if article_id
            ),
            intent_ranking=tuple(
                (str(item.get("name")), float(item.get("confidence") or 0.0))
                for item in data.get("intent_ranking") or []
                if item.get("name")
            ),
        )

    def guesses(self) -> Guesses:
        """The model's three best intents (not the fallback) and articles, for the agent's handover."""
        intents: List[IntentGuess] = [
            {"name": name, "confidence": round(confidence, 4)}
            for name, confidence in self.intent_ranking if name != DEFAULT_FALLBACK_INTENT
        ]
        articles: List[ArticleGuess] = [
            {"article_id": article_id, "confidence": round(confidence, 4)} for article_id, confidence in self.article_ranking
        ]
        return {"intents": intents[:GUESSES], "articles": articles[:GUESSES]}


@dataclass(frozen=True)
class Answer:
    """Answer this article."""

    article: Article


@dataclass(frozen=True)
class Suggest:
    """Not sure: offer these articles (closest first)."""

    hits: Tuple[SearchHit, ...]


@dataclass(frozen=True)
class Rephrase:
    """Nothing close: ask the user to say it another way."""


@dataclass(frozen=True)
class Unreadable:
    """The message can't be read as a question (empty, too long, no words)."""

    problem: InputProblem


@dataclass(frozen=True)
class OtherProduct:
    """The question names another company's product and not the service's own (kb/product_scope.yml)."""

    name: str


Decision = Union[Answer, Suggest, Rephrase, Unreadable, OtherProduct]


def fused_ranking(
    selector: Tuple[Tuple[str, float], ...], hits: List[SearchHit], search_weight: float
) -> List[Tuple[str, float]]:
    """Articles by selector confidence + ``search_weight`` x search similarity, best first."""
    scores: Dict[str, float] = {article_id: confidence for article_id, confidence in selector}
    for hit in hits:
        scores[hit.article.id] = scores.get(hit.article.id, 0.0) + search_weight * hit.score
    return sorted(scores.items(), key=lambda item: item[1], reverse=True)


def pick_article(
    selector: Tuple[Tuple[str, float], ...],
    hits: List[SearchHit],
    search_weight: float,
    threshold: float,
    margin: float,
) -> Optional[str]:
    """The best fused article when its score is >= ``threshold`` and leads by ``margin``; else None."""
    ranking = fused_ranking(selector, hits, search_weight)
    if not ranking:
        return None
    best, score = ranking[0]
    runner_up = ranking[1][1] if len(ranking) > 1 else 0.0
    return best if score >= threshold and score - runner_up >= margin else None


@dataclass(frozen=True)
class AnswerGate:
    """When an article is answered: fused score >= ``threshold`` and ahead of the runner-up by ``margin``.

    The fused score is the selector's confidence (0..1) plus ``search_weight``
    times the KB-search similarity (0..1). The shipped values are the settings'
    (chosen on tests/eval/dev.yml, README "Tuning"); bench/sweep_thresholds.py
    tries others with the same decision.
    """

    search_weight: float
    threshold: float
    margin: float

    @classmethod
    def from_settings(cls, settings: Settings) -> "AnswerGate":
        return cls(settings.search_weight, settings.answer_threshold, settings.answer_margin)


# The articles a decision may use: the serving model's (``trained_article_ids``), or None for every article in kb/.
Answerable = Optional[FrozenSet[str]]


@dataclass
class Answerer:
    """Holds the knowledge base and its search indexes for one process.

    A decision only uses the articles the serving model was trained on
    (``answerable``, from the model's domain): an article saved in kb/ after
    that model was trained and checked answers no visitor, by the answer gate
    or a suggestion, until a retrained model that passed the checks serves it
    (bot/training/serving.py). Its text still comes from kb/ as it is now.
    """

    settings: Settings
    kb: KnowledgeBase = field(init=False)
    scope: "ProductScopeFile" = field(init=False)
    # One index per (kb/ version, answerable set): in practice one, two while a new model loads.
    _searches: Dict[Tuple[int, Answerable], ArticleSearch] = field(default_factory=dict, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self.kb = KnowledgeBase(self.settings.kb_dir)
        self.scope = ProductScopeFile(self.settings.kb_dir / PRODUCT_SCOPE_FILE)

    def article_search(self, answerable: Answerable = None) -> ArticleSearch:
        """The search index of kb/ as it is now (rebuilt after kb/ changes), over ``answerable`` articles only."""
        version = self.kb.version
        key = (version, answerable)
        with self._lock:
            search = self._searches.get(key)
            if search is None:
                nlp = load_pipeline(self.settings.spacy_model_dir)
                articles = [a for a in self.kb.all() if answerable is None or a.id in answerable]
                search = ArticleSearch(articles, nlp)
                # Indexes of older kb/ versions are never asked for again.
                self._searches = {k: v for k, v in self._searches.items() if k[0] == version}
                self._searches[key] = search
            return search

    def search(self, query: str, limit: int, min_score: float = 0.0, answerable: Answerable = None) -> List[SearchHit]:
        """The ``limit`` closest articles to ``query`` scoring at least ``min_score`` (of ``answerable`` ones)."""
        return self.article_search(answerable).search(query, limit=limit, min_score=min_score)

    def article(self, article_id: str, answerable: Answerable = None) -> Optional[Article]:
        """The article ``article_id`` as kb/ has it now, when it exists and is ``answerable``; else None."""
        if answerable is not None and article_id not in answerable:
            return None
        return self.kb.get(article_id)

    def warm_up(self) -> None:
        """Load the spaCy pipeline and build the index now, not on a visitor's first message."""
        try:
            self.search("warm up", limit=1)
        except Exception:  # noqa: BLE001 (a failed warm-up only costs time later)
            logger.exception("kb search warm-up failed")

    def search_limit(self) -> int:
        """How many search hits one decision needs (the fused score's candidates and the suggestions)."""
        return max(FUSION_CANDIDATES, self.settings.suggest_count)

    def decide(
        self,
        parsed: ParsedMessage,
        gate: Optional[AnswerGate] = None,
        hits: Optional[List[SearchHit]] = None,
        answerable: Answerable = None,
    ) -> Decision:
        """How to reply to a question-like message.

        ``gate``: the answer thresholds (default: the settings'); ``hits``: the
        message's search hits when already known (``search_limit()`` of them),
        else searched here, once, and only when the message needs it;
        ``answerable``: the articles it may answer or suggest (None: all).
        """
        if parsed.chosen_article_id:
            chosen = self.article(parsed.chosen_article_id, answerable)
            if chosen is not None:
                return Answer(chosen)
        problem = input_problem(parsed.text, self.settings.max_message_chars)
        if problem is not None:
            return Unreadable(problem)
        other = self.scope.current().other_product(parsed.text)
        if other is not None:
            return OtherProduct(other)
        gate = gate or AnswerGate.from_settings(self.settings)
        # One search per message serves both the answer gate and the suggestions.
        if hits is None:
            hits = self.search(parsed.text, limit=self.search_limit(), answerable=answerable)
        if parsed.intent == RETRIEVAL_INTENT:
            article_id = pick_article(
                parsed.article_ranking, hits[:FUSION_CANDIDATES], gate.search_weight, gate.threshold, gate.margin
            )
            article = self.article(article_id, answerable) if article_id else None
            if article is not None:
                return Answer(article)
        close = [hit for hit in hits if hit.score >= self.settings.suggest_min_score][: self.settings.suggest_count]
        return Suggest(tuple(close)) if close else Rephrase()
