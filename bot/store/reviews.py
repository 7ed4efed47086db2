"""Spot-checks of the bot's confident answers: a sample for a lead to mark right or wrong.

The bot answers an article only when it is confident (bot/dialogue/answering.py),
so a wrong confident answer is invisible unless the visitor says "not helpful".
Leads review a sample: article answers (``messages.kind = 'article'``) to a
question the visitor typed (not a suggestion button pressed), not yet
reviewed, and not already marked "not helpful" by the visitor (those are in
the missed messages already), with an article the knowledge base still has
(an answer from a deleted article has nothing left to judge or fix).

Each question-and-answer pair is sampled once: answers with the same
article to the same words (case and outer spaces aside; a starter button's
question, a common phrasing) are one item, shown by its newest answer, and
a pair a lead has judged in any conversation is not offered again. The
sample is a stable pseudo-random order of those answers' ids (the same
page on every reload; deciding one brings the next), computed by the
database.

A "wrong" verdict makes the visitor's question a missed message
(bot/lead/misses.py, source ``review``), with the article never proposed for it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Collection, Dict, List, Optional

from sqlalchemy import BigInteger, and_, cast, exists, false, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.selectable import Select

from bot.protocol import MessageKind, Sender
from bot.store.database import Store, StoreError, store_errors
from bot.store.models import REVIEW_VERDICTS, AnswerReview, Feedback, Message
from bot.store.period import Moment, in_period, period_bounds

logger = logging.getLogger(__name__)

# The sample's order: (id * multiplier) mod a prime, a fixed shuffle of the ids.
SHUFFLE_MULTIPLIER = 2654435761
SHUFFLE_MODULUS = 1000003
BUTTON_PREFIX = "/"


class NotAnAnswerError(StoreError, LookupError):
    """No bot article answer to a typed visitor question has that id."""


class AlreadyReviewedError(StoreError):
    """The answer has a verdict already: one per answer."""


@dataclass(frozen=True)
class ReviewItem:
    """An answer to spot-check: the visitor's question and the article the bot answered it with."""

    answer_id: int
    question_id: int
    conversation_id: str
    question: str
    article_id: str
    answered_at: datetime


@dataclass(frozen=True)
class ReviewRecord:
    """A lead's verdict on an answer."""

    answer_id: int
    question_id: int
    article_id: str
    verdict: str
    reviewed_by: str
    reviewed_at: datetime


def _question_key(question: Any) -> ColumnElement:
    """The words of a question as pairs are told apart: case and outer spaces aside."""
    return func.lower(func.trim(question.text))


def _candidates(start: Optional[datetime], end: Optional[datetime], articles: Optional[Collection[str]]) -> Select:
    """(answer, question) pairs of the period still to review, one row per answer: both messages' columns
    and the pair's ``question_key``. ``articles``: the article ids the knowledge base has (None: any)."""
    answer, question, earlier = aliased(Message), aliased(Message), aliased(Message)
    question_id = (
        select(func.max(earlier.id))
        .where(earlier.conversation_id == answer.conversation_id, earlier.id < answer.id)
        .correlate(answer)
        .scalar_subquery()
    )
    judged_question = aliased(Message)
    # Judged already: this answer, or the same words answered with the same article anywhere.
    reviewed = exists().where(AnswerReview.answer_message_id == answer.id)
    pair_reviewed = (
        exists()
        .where(AnswerReview.article_id == answer.article_id, judged_question.id == AnswerReview.question_message_id,
               _question_key(judged_question) == _question_key(question))
    )
    # The conversation's "No"s, found by the conversation's index: with the article beside it in one
    # EXISTS, SQLite (no statistics) walked every verdict of that article for each answer instead.
    not_helpful = answer.article_id.in_(
        select(Feedback.article_id).where(Feedback.conversation_id == answer.conversation_id, Feedback.helpful == false())
    )
    known = [answer.article_id.in_(sorted(articles))] if articles is not None else []
    return (
        select(
            answer.id.label("answer_id"), question.id.label("question_id"), answer.conversation_id,
            question.text.label("question"), answer.article_id, answer.created_at,
            _question_key(question).label("question_key"),
        )
        .join(question, question.id == question_id)
        .where(
            answer.kind == MessageKind.ARTICLE.value, answer.sender == Sender.BOT.value, answer.article_id.is_not(None),
            *known, *in_period(answer.created_at, start, end),
            question.sender == Sender.VISITOR.value, ~question.text.startswith(BUTTON_PREFIX),
            ~reviewed, ~not_helpful, ~pair_reviewed,
        )
    )


def _pairs(start: Optional[datetime], end: Optional[datetime], articles: Optional[Collection[str]]) -> Select:
    """One row per (question words, article) pair still to review: its newest answer's columns."""
    candidates = _candidates(start, end, articles).subquery()
    newest = (
        select(func.max(candidates.c.answer_id))
        .group_by(candidates.c.question_key, candidates.c.article_id)
    )
    return select(candidates).where(candidates.c.answer_id.in_(newest))


def review_sample(
    store: Store, since: Optional[Moment] = None, until: Optional[Moment] = None, limit: int = 10,
    articles: Optional[Collection[str]] = None,
) -> List[ReviewItem]:
    """Up to ``limit`` question-and-answer pairs of the period to spot-check, each once, in the sample's
    fixed order. ``articles``: the ids the knowledge base has now (answers from others are left out).

    Raises ValueError for a bad period or limit, StoreUnavailableError.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    start, end = period_bounds(since, until)
    pairs = _pairs(start, end, articles).subquery()
    shuffled = (cast(pairs.c.answer_id, BigInteger) * SHUFFLE_MULTIPLIER) % SHUFFLE_MODULUS
    query = select(pairs).order_by(shuffled, pairs.c.answer_id).limit(limit)
    with store_errors("read the answers to review"), store.session() as session:
        return [
            ReviewItem(row.answer_id, row.question_id, row.conversation_id, row.question, row.article_id, row.created_at)
            for row in session.execute(query)
        ]


def pending_reviews(
    store: Store, since: Optional[Moment] = None, until: Optional[Moment] = None,
    articles: Optional[Collection[str]] = None,
) -> int:
    """How many question-and-answer pairs of the period are still to review (as review_sample counts them).

    Raises ValueError, StoreUnavailableError.
    """
    start, end = period_bounds(since, until)
    pairs = _pairs(start, end, articles).subquery()
    with store_errors("count the answers to review"), store.session() as session:
        return int(session.scalar(select(func.count()).select_from(pairs)) or 0)


def review_counts(store: Store, since: Optional[Moment] = None, until: Optional[Moment] = None) -> Dict[str, int]:
    """Verdicts given on answers of the period: ``{"right": n, "wrong": n}``. Raises ValueError, StoreUnavailableError."""
    start, end = period_bounds(since, until)
    query = (
        select(AnswerReview.verdict, func.count())
        .join(Message, Message.id == AnswerReview.answer_message_id)
        .where(*in_period(Message.created_at, start, end))
        .group_by(AnswerReview.verdict)
    )
    counts = {verdict: 0 for verdict in REVIEW_VERDICTS}
    with store_errors("count the reviews"), store.session() as session:
        for verdict, count in session.execute(query):
            counts[verdict] = int(count)
    return counts


def record_review(store: Store, answer_id: int, verdict: str, reviewer: str, now: datetime) -> ReviewRecord:
    """Record a lead's verdict ("right" or "wrong") on answer ``answer_id``.

    Raises ValueError for an unknown verdict, NotAnAnswerError when
    ``answer_id`` is not a bot article answer to a typed visitor question,
    AlreadyReviewedError, StoreError.
    """
    if verdict not in REVIEW_VERDICTS:
        raise ValueError(f"verdict must be one of {', '.join(REVIEW_VERDICTS)}, got {verdict!r}")
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    with store_errors("record a review"):
        try:
            with store.session() as session, session.begin():
                earlier = session.scalars(select(AnswerReview).where(AnswerReview.answer_message_id == answer_id)).first()
                if earlier is not None:
                    raise AlreadyReviewedError(f"{earlier.reviewed_by} already marked this answer {earlier.verdict}")
                answer = session.get(Message, answer_id)
                question = None
                if answer is not None and answer.kind == MessageKind.ARTICLE.value and answer.sender == Sender.BOT.value:
                    question = session.scalars(
                        select(Message).where(Message.conversation_id == answer.conversation_id, Message.id < answer.id)
                        .order_by(Message.id.desc()).limit(1)
                    ).first()
                if answer is None or question is None or question.sender != Sender.VISITOR.value \
                        or question.text.startswith(BUTTON_PREFIX) or not answer.article_id:
                    raise NotAnAnswerError(f"message {answer_id} is not an answer to review")
                row = AnswerReview(
                    answer_message_id=answer.id, question_message_id=question.id, article_id=answer.article_id,
                    verdict=verdict, reviewed_by=reviewer, reviewed_at=now,
                )
                session.add(row)
                session.flush()
                record = ReviewRecord(answer.id, question.id, answer.article_id, verdict, reviewer, now)
        except IntegrityError as error:  # another lead, at the same moment
            raise AlreadyReviewedError("another lead has just reviewed this answer") from error
    logger.info("store: %s marked answer %s (%s) %s", reviewer, answer_id, record.article_id, verdict)
    return record


def review_of(store: Store, answer_id: int) -> Optional[ReviewRecord]:
    """The verdict on answer ``answer_id``, or None. Raises StoreUnavailableError."""
    with store_errors("read a review"), store.session() as session:
        row = session.scalars(select(AnswerReview).where(AnswerReview.answer_message_id == answer_id)).first()
        if row is None:
            return None
        return ReviewRecord(row.answer_message_id, row.question_message_id, row.article_id, row.verdict,
                            row.reviewed_by, row.reviewed_at)


def wrong_answer_reviews(start: Optional[datetime]) -> Select:
    """For bot.lead.misses: (question id, article id) of every answer reviewed "wrong" since ``start``."""
    return select(AnswerReview.question_message_id, AnswerReview.article_id).where(
        and_(AnswerReview.verdict == "wrong", *in_period(AnswerReview.reviewed_at, start, None))
    )
