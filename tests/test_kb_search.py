"""KB search finds the closest articles by meaning of the words, lemmatised."""
from __future__ import annotations

import pytest

from bot.kb.articles import load_articles
from bot.kb.search import ArticleSearch
from bot.nlu.spacy_pipeline import load_pipeline
from bot.settings import Settings


@pytest.fixture(scope="module")
def search(project_settings: Settings) -> ArticleSearch:
    return ArticleSearch(load_articles(project_settings.kb_dir), load_pipeline(project_settings.spacy_model_dir))


@pytest.mark.parametrize(
    "query, article",
    [
        ("charged twice on my card", "double-charge"),
        ("subtitles language", "subtitles-audio"),
        ("forgot password link", "password-reset"),
        ("gift card code", "gift-cards-promo"),
    ],
)
def test_a_plain_query_finds_its_article_among_the_top_three(search: ArticleSearch, query: str, article: str) -> None:
    assert article in [hit.article.id for hit in search.search(query, limit=3)]


def test_scores_are_cosine_similarities_best_first(search: ArticleSearch) -> None:
    hits = search.search("cancel my subscription", limit=3)
    scores = [hit.score for hit in hits]
    assert scores == sorted(scores, reverse=True) and all(0 < s <= 1 for s in scores)


def test_gibberish_finds_nothing_close(search: ArticleSearch, project_settings: Settings) -> None:
    assert search.search("zxqv blorft qwop", limit=3, min_score=project_settings.suggest_min_score) == []
    assert search.search("", limit=3) == []


def test_typos_still_find_the_article(search: ArticleSearch) -> None:
    assert search.search("cancelation of my subscribtion", limit=1)[0].article.id == "cancel-subscription"
