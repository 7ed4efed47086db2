"""Find the articles closest to a message: TF-IDF over lemmas, cosine similarity.

Used when the model is not sure enough to answer: the closest articles are
offered as choices instead of a guess. Scores are cosine similarities in
0..1, so one threshold (``suggest_min_score``) says what counts as close.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Sequence

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics.pairwise import linear_kernel
from spacy.language import Language

from bot.kb.articles import Article


@dataclass(frozen=True)
class SearchHit:
    """An article and how close it is to the query (cosine similarity, 0..1)."""

    article: Article
    score: float


def lemma_analyzer(nlp: Language) -> Callable[[str], List[str]]:
    """Lower-case lemmas without stop words or punctuation, plus their bigrams."""

    def analyze(text: str) -> List[str]:
        lemmas = [
            (token.lemma_ or token.text).lower()
            for token in nlp(text)
            if not (token.is_punct or token.is_space or token.is_stop)
        ]
        return lemmas + [f"{a} {b}" for a, b in zip(lemmas, lemmas[1:])]

    return analyze


def article_document(article: Article) -> str:
    """The text an article is found by: its title, its phrasings and its answer."""
    return "\n".join([article.title, *article.questions, article.body])


class ArticleSearch:
    """A TF-IDF index over articles, built once per knowledge-base version."""

    def __init__(self, articles: Sequence[Article], nlp: Language) -> None:
        self._articles = list(articles)
        self._vectorizer = TfidfVectorizer(analyzer=lemma_analyzer(nlp), sublinear_tf=True)
        self._matrix = self._vectorizer.fit_transform([article_document(a) for a in self._articles])

    def search(self, query: str, limit: int = 3, min_score: float = 0.0) -> List[SearchHit]:
        """The ``limit`` articles most similar to ``query`` scoring at least ``min_score``."""
        if not self._articles or not query.strip():
            return []
        scores = linear_kernel(self._vectorizer.transform([query]), self._matrix)[0]
        ranked = sorted(range(len(scores)), key=lambda i: scores[i], reverse=True)
        return [
            SearchHit(self._articles[i], float(scores[i]))
            for i in ranked[:limit]
            if scores[i] > 0 and scores[i] >= min_score
        ]
