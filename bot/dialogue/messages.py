"""Turn decisions into bot messages (keyword arguments for ``dispatcher.utter_message``).

Wording lives in domain.yml responses; this module adds what is dynamic:
article answers served from kb/, buttons, and the machine-readable
``custom`` payload that names the article each answer came from.
"""
from __future__ import annotations

import json
from typing import Any, Dict, Iterable, List

from bot.dialogue.answering import Answer, Decision, Rephrase, Suggest, Unreadable
from bot.dialogue.input_check import InputProblem
from bot.kb.articles import Article

Message = Dict[str, Any]

TALK_TO_PERSON = {"title": "Talk to a person", "payload": "/request_human"}
PAYLOAD_KEY = "deskmate"

UNREADABLE_RESPONSES = {
    InputProblem.EMPTY: "utter_empty_message",
    InputProblem.TOO_LONG: "utter_too_long",
    InputProblem.NO_WORDS: "utter_no_words",
}


def intent_payload(intent: str, **entities: str) -> str:
    """A button payload that Rasa reads as ``intent`` with ``entities``."""
    return f"/{intent}{json.dumps(entities, separators=(',', ':'))}" if entities else f"/{intent}"


def article_button(article: Article) -> Dict[str, str]:
    """A button that answers ``article`` when pressed."""
    return {"title": article.title, "payload": intent_payload("faq", article_id=article.id)}


def article_answer(article: Article, kind: str = "article") -> Message:
    """The article's text, carrying its id machine-readably (``custom`` and metadata).

    ``kind`` is "article" for an answer to the question asked, "contact" when
    the article is shown as the way to reach the support team.
    """
    return {
        "text": article.body,
        "json_message": {PAYLOAD_KEY: {"type": kind, "article_id": article.id, "title": article.title}},
        "article_id": article.id,
    }


def article_messages(article: Article) -> List[Message]:
    """The answer, then "Was this helpful?" with yes / no buttons naming the article."""
    return [
        article_answer(article),
        {
            "response": "utter_was_this_helpful",
            "buttons": [
                {"title": "Yes", "payload": intent_payload("feedback_helpful", article_id=article.id)},
                {"title": "No", "payload": intent_payload("feedback_not_helpful", article_id=article.id)},
            ],
        },
    ]


def suggestion_messages(response: str, articles: Iterable[Article], kind: str = "suggestions") -> List[Message]:
    """``response`` with a button per article, then "Talk to a person".

    ``kind`` names the situation machine-readably: "suggestions" (not sure
    what was asked), "rephrase" (nothing close), "related" (after an answer
    that did not help).
    """
    articles = list(articles)
    message: Message = {
        "response": response,
        "buttons": [article_button(a) for a in articles] + [TALK_TO_PERSON],
        "json_message": {PAYLOAD_KEY: {"type": kind, "article_ids": [a.id for a in articles]}},
    }
    return [message]


def decision_messages(decision: Decision, max_chars: int) -> List[Message]:
    """The messages that carry out ``decision``."""
    if isinstance(decision, Answer):
        return article_messages(decision.article)
    if isinstance(decision, Suggest):
        return suggestion_messages("utter_not_sure", (hit.article for hit in decision.hits))
    if isinstance(decision, Rephrase):
        return suggestion_messages("utter_rephrase", (), kind="rephrase")
    if isinstance(decision, Unreadable):
        return [{"response": UNREADABLE_RESPONSES[decision.problem], "max_chars": max_chars}]
    raise TypeError(f"unknown decision {decision!r}")
