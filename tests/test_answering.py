"""The bot answers only when the response selector is sure of the article."""
from __future__ import annotations

from pathlib import Path

import pytest

from bot.dialogue.answering import Answer, Answerer, ParsedMessage, Rephrase, Suggest, Unreadable
from bot.dialogue.input_check import InputProblem
from bot.settings import Settings


@pytest.fixture(scope="module")
def answerer(project_settings: Settings) -> Answerer:
    return Answerer(project_settings)


def parse_data(text: str, intent: str, confidence: float, article: str, article_confidence: float, runner_up: float = 0.01) -> dict:
    """Parse data shaped as Rasa's /model/parse returns it."""
    return {
        "text": text,
        "intent": {"name": intent, "confidence": confidence},
        "entities": [],
        "intent_ranking": [{"name": intent, "confidence": confidence}],
        "response_selector": {
            "all_retrieval_intents": ["faq"],
            "faq": {
                "response": {"intent_response_key": f"faq/{article}", "confidence": article_confidence},
                "ranking": [
                    {"intent_response_key": f"faq/{article}", "confidence": article_confidence},
                    {"intent_response_key": "faq/refund-policy", "confidence": runner_up},
                ],
            },
        },
    }


def test_confident_article_choice_is_answered(answerer: Answerer) -> None:
    decision = answerer.decide(ParsedMessage.from_parse_data(parse_data("charged twice", "faq", 0.99, "double-charge", 0.97)))
    assert isinstance(decision, Answer) and decision.article.id == "double-charge"


def test_high_faq_intent_with_unsure_article_choice_is_not_answered(answerer: Answerer) -> None:
    # The trap in the field notes: faq at 0.99 while the selector is at 0.2,
    # and the KB search does not back its choice either.
    parsed = ParsedMessage.from_parse_data(parse_data("my card got charged", "faq", 0.99, "tv-sign-in", 0.2))
    decision = answerer.decide(parsed)
    assert isinstance(decision, Suggest)
    assert "tv-sign-in" not in [hit.article.id for hit in decision.hits]


def test_an_unsure_selector_backed_by_the_search_is_answered(answerer: Answerer) -> None:
    # Two independent views agreeing: selector 0.35 and a strong search match.
    parsed = ParsedMessage.from_parse_data(parse_data("charged twice refund duplicate charge", "faq", 0.99, "double-charge", 0.35))
    decision = answerer.decide(parsed)
    assert isinstance(decision, Answer) and decision.article.id == "double-charge"


def test_fallback_intent_never_answers_even_with_a_sure_selector(answerer: Answerer) -> None:
    parsed = ParsedMessage.from_parse_data(parse_data("cancel my plan", "nlu_fallback", 0.5, "cancel-subscription", 0.99))
    assert not isinstance(answerer.decide(parsed), Answer)


def test_a_pressed_suggestion_answers_that_article(answerer: Answerer) -> None:
    data = {"text": '/faq{"article_id":"invoices"}', "intent": {"name": "faq", "confidence": 1.0},
            "entities": [{"entity": "article_id", "value": "invoices"}]}
    decision = answerer.decide(ParsedMessage.from_parse_data(data))
    assert isinstance(decision, Answer) and decision.article.id == "invoices"


def test_nothing_close_asks_to_rephrase(answerer: Answerer) -> None:
    parsed = ParsedMessage.from_parse_data(parse_data("zxqv blorft", "nlu_fallback", 0.3, "invoices", 0.1))
    assert isinstance(answerer.decide(parsed), Rephrase)


def test_unreadable_messages_are_never_answered(answerer: Answerer) -> None:
    long = ParsedMessage.from_parse_data(parse_data("refund " * 2000, "faq", 0.99, "refund-policy", 0.99))
    assert answerer.decide(long) == Unreadable(InputProblem.TOO_LONG)
    emoji = ParsedMessage.from_parse_data(parse_data("💸💸", "faq", 0.99, "refund-policy", 0.99))
    assert answerer.decide(emoji) == Unreadable(InputProblem.NO_WORDS)


def test_an_edited_answer_is_served_without_retraining(tmp_path: Path, project_settings: Settings) -> None:
    import shutil

    kb_dir = tmp_path / "kb"
    shutil.copytree(project_settings.kb_dir, kb_dir)
    service = Answerer(Settings(kb_dir=kb_dir))
    parsed = ParsedMessage.from_parse_data(parse_data("charged twice", "faq", 0.99, "double-charge", 0.97))
    before = service.decide(parsed).article.body
    path = next(kb_dir.glob("**/double-charge.md"))
    text = path.read_text()
    path.write_text(text.replace(before, "An edited answer."))
    import os, time

    os.utime(path, (time.time() + 5, time.time() + 5))
    from bot.kb.library import RECHECK_SECONDS

    time.sleep(RECHECK_SECONDS)  # kb/ is looked at again at most this often (one message asks several times)
    assert service.decide(parsed).article.body == "An edited answer."
