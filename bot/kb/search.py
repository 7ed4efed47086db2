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
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics.pairwise import linear_kernel
from spacy.language import Language
from spacy.tokens import Doc

from bot.kb.articles import Article


@dataclass(frozen=True)
class SearchHit:
    """An article and how close it is to the query (cosine similarity, 0..1)."""

    article: Article
    score: float


def doc_lemmas(doc: Doc) -> List[str]:
    """Lower-case lemmas of a parsed text without stop words or punctuation, plus their bigrams."""
    lemmas = [
        (token.lemma_ or token.text).lower()
        for token in doc
        if not (token.is_punct or token.is_space or token.is_stop)
    ]
    return lemmas + [f"{a} {b}" for a, b in zip(lemmas, lemmas[1:])]


def lemma_analyzer(nlp: Language) -> Callable[[str], List[str]]:
    """Lower-case lemmas without stop words or punctuation, plus their bigrams."""

    def analyze(text: str) -> List[str]:
        return doc_lemmas(nlp(text))

    return analyze


def article_document(article: Article) -> str:
    """The text an article is found by: its title, its phrasings and its answer."""
    return "\n".join([article.title, *article.questions, article.body])


# Character n-grams within word boundaries, the range that caught typos best on the dev set.
CHAR_NGRAMS = (3, 5)


def _already_analysed(terms: List[str]) -> List[str]:
    return terms


def _side_by_side(views: Sequence[sparse.spmatrix]) -> sparse.csr_matrix:
    """L2-normalised views joined and scaled so a row's dot products are the mean of the views' cosines."""
    scale = 1.0 / np.sqrt(len(views))
    return sparse.hstack([view * scale for view in views], format="csr")


@dataclass(frozen=True)
class TextVectors:
    """Texts and articles in one vector space (see ``ArticleSearch.vectorise``)."""

    texts: sparse.csr_matrix
    articles: sparse.csr_matrix


class ArticleSearch:
    """Word and character TF-IDF indexes over articles, built once per knowledge-base version."""

    def __init__(self, articles: Sequence[Article], nlp: Language) -> None:
        self._articles = list(articles)
        self._nlp = nlp
        documents = [article_document(a) for a in self._articles]
        self._vectorizers = [
            TfidfVectorizer(analyzer=lemma_analyzer(nlp), sublinear_tf=True),
            TfidfVectorizer(analyzer="char_wb", ngram_range=CHAR_NGRAMS, sublinear_tf=True, lowercase=True),
        ]
        # vectorise()'s: the articles' terms in each view, analysed on first use.
        self._article_terms: Optional[Tuple[List[List[str]], ...]] = None
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

    @property
    def articles(self) -> List[Article]:
        """The indexed articles, in the order of ``vectorise``'s article rows."""
        return list(self._articles)

    def _analyse(self, texts: Sequence[str]) -> Tuple[List[List[str]], ...]:
        """The terms of each text in each view, exactly as the index's analyzers make them."""
        # The entity ruler changes no lemma: skipped (nlp.pipe leaves the shared pipeline as it is).
        unused = [name for name in self._nlp.pipe_names if name in ("entity_ruler", "ner")]
        lemmas = [doc_lemmas(doc) for doc in self._nlp.pipe(texts, disable=unused)]
        chars = self._vectorizers[1].build_analyzer()
        return lemmas, [chars(text) for text in texts]

    def vectorise(self, texts: Sequence[str]) -> TextVectors:
        """``texts`` and the articles as rows of one space: the search's two views, fitted afresh.

        Same analyzers and settings as the index, but the vocabulary and IDF
        are learnt from the articles plus ``texts``: the index only knows the
        knowledge base's words, so the topics it lacks would have no features.
        Rows have length 1 (less when a view finds nothing), and the dot
        product of two rows is the mean of their two cosines, as in ``search``.
        """
        if self._article_terms is None:
            self._article_terms = self._analyse([article_document(a) for a in self._articles])
        views = []
        for article_terms, text_terms in zip(self._article_terms, self._analyse([str(t) for t in texts])):
            view = TfidfVectorizer(analyzer=_already_analysed, sublinear_tf=True)
            views.append(view.fit_transform(article_terms + text_terms))
        joined = _side_by_side(views)
        split = len(self._articles)
        return TextVectors(texts=joined[split:], articles=joined[:split])
