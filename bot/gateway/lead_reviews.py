"""The lead console's spot-checks of confident answers (bot/store/reviews.py).

``GET /lead/api/reviews?since&until``: ``{items: [{answer_id, question_id,
conversation_id, question, article_id, title, answer, answered_at}],
pending, counts: {right, wrong}}``, a sample of the period's article answers
to typed questions that nobody has reviewed, each question-and-answer pair
once and only from articles the knowledge base still has, in a fixed
pseudo-random order (``pending`` counts those pairs).
``POST /lead/api/reviews/{answer_id}`` with ``{verdict: "right" | "wrong"}``
records the verdict (409 when already reviewed, 404 for a message that is no
answer); a wrong answer's question joins "What the knowledge base lacks".
"""
from __future__ import annotations

import asyncio
from typing import Any, Dict

from aiohttp import web

from bot.gateway.errors import RequestError, json_body, json_error, path_id
from bot.gateway.keys import ANSWERER, CLOCK, STORE
from bot.gateway.lead_range import report_range
from bot.gateway.staff_auth import CSRF_HEADER, audit_staff_action, check_csrf, require_lead
from bot.store.inbox import MessageNotFoundError
from bot.store.reviews import AlreadyReviewedError, NotAnAnswerError, pending_reviews, record_review, review_counts, review_sample

SAMPLE_SIZE = 10
SUMMARIES = {
    "right": "Marked right.",
    "wrong": "Marked wrong: the question is now in \u201cWhat the knowledge base lacks\u201d to decide.",
}


async def reviews_api(request: web.Request) -> web.Response:
    """A sample of confident answers of the period to spot-check, with the period's verdict counts."""
    await require_lead(request, api=True)
    since, until = report_range(request)
    store = request.app[STORE]
    articles = {a.id: a for a in request.app[ANSWERER].kb.all()}

    def read() -> Dict[str, Any]:
        # Only answers from articles the knowledge base still has: a deleted one has nothing to judge.
        items = review_sample(store, since, until, limit=SAMPLE_SIZE, articles=articles.keys())
        return {
            "items": [
                {
                    "answer_id": item.answer_id, "question_id": item.question_id,
                    "conversation_id": item.conversation_id, "question": item.question,
                    "article_id": item.article_id,
                    "title": articles[item.article_id].title, "answer": articles[item.article_id].body,
                    "answered_at": item.answered_at.isoformat(),
                }
                for item in items
            ],
            "pending": pending_reviews(store, since, until, articles=articles.keys()),
            "counts": review_counts(store, since, until),
        }

    return web.json_response(await asyncio.to_thread(read))


async def review_api(request: web.Request) -> web.Response:
    """Mark one answer right or wrong."""
    staff = await require_lead(request, api=True)
    await check_csrf(request, request.headers.get(CSRF_HEADER))
    answer_id = path_id(request, "answer_id", MessageNotFoundError)
    body = await json_body(request, '{verdict: "right" | "wrong"}')
    verdict = body.get("verdict") if isinstance(body, dict) else None
    if verdict not in SUMMARIES:
        raise RequestError('send JSON: {verdict: "right" | "wrong"}')
    try:
        review = await asyncio.to_thread(
            record_review, request.app[STORE], answer_id, str(verdict), staff["email"], request.app[CLOCK]()
        )
    except NotAnAnswerError as error:
        return json_error(404, str(error))
    except AlreadyReviewedError as error:
        return json_error(409, str(error))
    except ValueError as error:
        raise RequestError(str(error)) from error
    await audit_staff_action(request, staff, "review_answer", f"message {answer_id}", verdict=review.verdict,
                             article=review.article_id)
    return web.json_response({"verdict": review.verdict, "article_id": review.article_id,
                              "question_id": review.question_id, "summary": SUMMARIES[review.verdict]})


def add_review_routes(app: web.Application) -> None:
    """Register the spot-check API."""
    app.router.add_get("/lead/api/reviews", reviews_api)
    app.router.add_post("/lead/api/reviews/{answer_id}", review_api)
