"""Turn decisions into bot messages (keyword arguments for ``dispatcher.utter_message``).

Wording lives in domain.yml responses; this module adds what is dynamic:
article answers served from kb/, buttons, and the machine-readable
``deskmate`` payload (bot.protocol) that names the article each answer came
from, the articles offered, what the model guessed when it was unsure, and
a refusal as one (the leads check what the bot refused).
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, List, Literal, Optional

from bot.dialogue.answering import Answer, Decision, OtherProduct, Rephrase, Suggest, Unreadable
from bot.dialogue.input_check import InputProblem
from bot.kb.articles import Article
from bot.protocol import (
    PAYLOAD_KEY,
    ArticlePayload,
    Button,
    ChoicesPayload,
    Guesses,
    OtherProductPayload,
    OutOfScopePayload,
    intent_payload,
)

Message = Dict[str, Any]

TALK_TO_PERSON: Button = {"title": "Talk to a person", "payload": intent_payload("request_human")}

UNREADABLE_RESPONSES = {
    InputProblem.EMPTY: "utter_empty_message",
    InputProblem.TOO_LONG: "utter_too_long",
    InputProblem.NO_WORDS: "utter_no_words",
}


def article_button(article: Article) -> Button:
    """A button that answers ``article`` when pressed."""
    return {"title": article.title, "payload": intent_payload("faq", article_id=article.id)}


def article_answer(article: Article, kind: Literal["article", "contact"] = "article") -> Message:
    """The article's text, carrying its id machine-readably (``custom`` and metadata).

    ``kind`` is "article" for an answer to the question asked, "contact" when
    the article is shown as the way to reach the support team.
    """
    payload: ArticlePayload = {"type": kind, "article_id": article.id, "title": article.title}
    return {"text": article.body, "json_message": {PAYLOAD_KEY: payload}, "article_id": article.id}


def article_messages(article: Article) -> List[Message]:
    """The answer, then "Was this helpful?" with yes / no buttons naming the article, and "Talk to a
    person" when the article answers a problem (``problem: true`` in its front matter: a double charge,
    a hacked account...), so an answer that says to contact the team never ends in a dead end."""
    buttons: List[Button] = [
        {"title": "Yes", "payload": intent_payload("feedback_helpful", article_id=article.id)},
        {"title": "No", "payload": intent_payload("feedback_not_helpful", article_id=article.id)},
    ]
    if article.problem:
        buttons.append(TALK_TO_PERSON)
    return [article_answer(article), {"response": "utter_was_this_helpful", "buttons": buttons}]


def suggestion_messages(
    response: str,
    articles: Iterable[Article],
    kind: Literal["suggestions", "rephrase", "related"] = "suggestions",
    guesses: Optional[Guesses] = None,
) -> List[Message]:
    """``response`` with a button per article, then "Talk to a person".

    ``kind`` names the situation machine-readably: "suggestions" (not sure
    what was asked), "rephrase" (nothing close), "related" (after an answer
    that did not help). ``guesses``: what the model made of the message,
    kept with the reply for an agent who may take over.
    """
    articles = list(articles)
    payload: ChoicesPayload = {"type": kind, "article_ids": [a.id for a in articles]}
    if guesses is not None:
        payload["guesses"] = guesses
    message: Message = {
        "response": response,
        "buttons": [article_button(a) for a in articles] + [TALK_TO_PERSON],
        "json_message": {PAYLOAD_KEY: payload},
    }
    return [message]


def out_of_scope_refusal() -> Message:
    """``utter_out_of_scope`` (its wording unchanged), named machine-readably: ``{"type": "out_of_scope"}``."""
    payload: OutOfScopePayload = {"type": "out_of_scope"}
    return {"response": "utter_out_of_scope", "json_message": {PAYLOAD_KEY: payload}}


def other_product_refusal(product: str) -> Message:
    """``utter_other_product`` naming ``product`` (the name as kb/product_scope.yml writes it, never the
    visitor's own text), and ``{"type": "other_product", "product": product}``."""
    payload: OtherProductPayload = {"type": "other_product", "product": product}
    return {"response": "utter_other_product", "product": product, "json_message": {PAYLOAD_KEY: payload}}


def decision_messages(decision: Decision, max_chars: int, guesses: Optional[Guesses] = None) -> List[Message]:
    """The messages that carry out ``decision`` (``guesses`` are kept on a fallback reply)."""
    if isinstance(decision, Answer):
        return article_messages(decision.article)
    if isinstance(decision, Suggest):
        return suggestion_messages("utter_not_sure", (hit.article for hit in decision.hits), guesses=guesses)
    if isinstance(decision, Rephrase):
        return suggestion_messages("utter_rephrase", (), kind="rephrase", guesses=guesses)
    if isinstance(decision, Unreadable):
        return [{"response": UNREADABLE_RESPONSES[decision.problem], "max_chars": max_chars}]
    if isinstance(decision, OtherProduct):
        return [other_product_refusal(decision.name)]
    raise TypeError(f"unknown decision {decision!r}")
