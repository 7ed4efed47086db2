"""Find the articles closest to a message: TF-IDF over lemmas and over character n-grams.

Two views of the same text, averaged: word lemmas (with bigrams) catch the
meaning, character 3-5-grams within words catch typos and word forms the
lemmatizer misses ("cancelation", "subscribtion"). Each is a cosine
similarity in 0..1, so their mean is too, and one threshold
(``suggest_min_score``) says what counts as close. The search serves the
answer gate (fused with the response selector) and the suggestions offered
when the bot is not sure. Measured on the dev set: README, "Tuning".
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


# Character n-grams within word boundaries, the range that caught typos best on the dev set.
CHAR_NGRAMS = (3, 5)


class ArticleSearch:
    """Word and character TF-IDF indexes over articles, built once per knowledge-base version."""

    def __init__(self, articles: Sequence[Article], nlp: Language) -> None:
        self._articles = list(articles)
        documents = [article_document(a) for a in self._articles]
        self._vectorizers = [
            TfidfVectorizer(analyzer=lemma_analyzer(nlp), sublinear_tf=True),
            TfidfVectorizer(analyzer="char_wb", ngram_range=CHAR_NGRAMS, sublinear_tf=True, lowercase=True),
        ]
        self._matrices = [vectorizer.fit_transform(documents) for vectorizer in self._vectorizers]

    def search(self, query: str, limit: int = 3, min_score: float = 0.0) -> List[SearchHit]:
        """The ``limit`` articles most similar to ``query`` scoring at least ``min_score``."""
        if not self._articles or not query.strip():
            return []
        views = [linear_kernel(v.transform([query]), m)[0] for v, m in zip(self._vectorizers, self._matrices)]
        scores = sum(views) / len(views)
        ranked = sorted(range(len(scores)), key=lambda i: scores[i], reverse=True)
        return [
            SearchHit(self._articles[i], float(scores[i]))
            for i in ranked[:limit]
            if scores[i] > 0 and scores[i] >= min_score
        ]
