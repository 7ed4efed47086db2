"""The lead console's article editor: create and edit knowledge-base articles (bot/lead/article_edits.py).

``GET /lead/api/articles``: ``{articles: [{id, title, category, problem}],
categories}``; ``GET /lead/api/articles/{id}``: ``{article: {id, title,
category, questions, related, problem, body, version}}`` (404 when unknown);
``POST /lead/api/articles`` with ``{id, title, category, questions: [..],
related: [..], problem, body, version, preview}`` creates (``version``
null) or edits an article (``version`` as read), or with ``preview: true``
only checks it: ``{written, path, text, version, needs_retraining,
summary}``. Refusals (bot/gateway/errors.py): 400 ``{error, problems: [..],
fields: [..]}`` (a field's length or characters, the knowledge-base check),
409 (the id exists, or the file changed since it was read); no message names
a server path.
"""
from __future__ import annotations

import asyncio
from typing import Any, Dict, List

from aiohttp import web

from bot.gateway.errors import RequestError, json_body, json_error, request_message
from bot.gateway.keys import SETTINGS
from bot.gateway.staff_auth import CSRF_HEADER, audit_staff_action, check_csrf, require_lead
from bot.lead.article_edits import ArticleDraft, article_version, categories, save_article
from bot.lead.kb_edits import _load_articles
from bot.settings import Settings

MAX_ITEMS = 200


async def articles_api(request: web.Request) -> web.Response:
    """Every article (id, title, category, problem flag), by title, and the categories in use."""
    await require_lead(request, api=True)
    settings: Settings = request.app[SETTINGS]
    articles = await asyncio.to_thread(_load_articles, settings.kb_dir)
    listed = sorted(articles, key=lambda a: (a.title.casefold(), a.id))
    return web.json_response({
        "articles": [{"id": a.id, "title": a.title, "category": a.category, "problem": a.problem} for a in listed],
        "categories": categories(articles),
    })


async def article_api(request: web.Request) -> web.Response:
    """One article's fields as the editor fills them, with the version to save against."""
    await require_lead(request, api=True)
    settings: Settings = request.app[SETTINGS]
    article_id = request.match_info["article_id"]

    def read() -> Dict[str, Any]:
        article = next((a for a in _load_articles(settings.kb_dir) if a.id == article_id), None)
        if article is None:
            return {}
        return {
            "id": article.id, "title": article.title, "category": article.category,
            "questions": list(article.questions), "related": list(article.related), "problem": article.problem,
            "body": article.body, "version": article_version(article),
        }

    article = await asyncio.to_thread(read)
    if not article:
        return json_error(404, f"there is no article {article_id[:60]!r}")
    return web.json_response({"article": article})


def _strings(body: Dict[str, Any], key: str) -> List[str]:
    value = body.get(key)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value) or len(value) > MAX_ITEMS:
        raise RequestError(f"{key} must be a list of at most {MAX_ITEMS} strings")
    return value


async def save_api(request: web.Request) -> web.Response:
    """Create, edit or (``preview``) check an article."""
    staff = await require_lead(request, api=True)
    await check_csrf(request, request.headers.get(CSRF_HEADER))
    body = await json_body(request, "{id, title, category, questions, related, problem, body, version, preview}")
    if not isinstance(body, dict):
        raise RequestError("send JSON: {id, title, category, questions, related, problem, body, version, preview}")
    texts = {key: body.get(key) for key in ("id", "title", "category", "body")}
    if not all(isinstance(value, str) for value in texts.values()):
        raise RequestError("id, title, category and body must be strings")
    version = body.get("version")
    if version is not None and not isinstance(version, str):
        raise RequestError("version must be the version read, or null for a new article")
    draft = ArticleDraft(
        id=str(texts["id"]), title=str(texts["title"]), category=str(texts["category"]),
        questions=tuple(_strings(body, "questions")), related=tuple(_strings(body, "related")),
        problem=body.get("problem") is True, body=str(texts["body"]),
    )
    preview = body.get("preview") is True
    settings: Settings = request.app[SETTINGS]
    # Refusals (ArticleRefusedError, ArticleExistsError, ArticleChangedError ...) are answered by the
    # error middleware, in one place, without server paths.
    saved = await asyncio.to_thread(save_article, settings.kb_dir, draft, version, preview)
    shown = request_message(request, str(saved.path))
    if preview:
        summary = f"Passes the knowledge-base check; would be written to {shown}."
    else:
        if saved.created:
            # A new article answers nobody until a retrained model that passed the checks knows it.
            then = "Retrain and check to put it in front of visitors: until then the bot neither answers nor suggests it."
        elif saved.needs_retraining:
            then = "Retrain to use its title and phrasings (the answer is live now)."
        else:
            then = "The answer is live now: no retraining needed."
        summary = f"{'Created' if saved.created else 'Saved'} {shown}. {then}"
        await audit_staff_action(request, staff, "article_edit", draft.id, created=saved.created)
    return web.json_response({
        "written": saved.written, "path": str(shown), "text": saved.text, "version": saved.version,
        "needs_retraining": saved.needs_retraining, "created": saved.created, "summary": summary,
    })


def add_article_routes(app: web.Application) -> None:
    """Register the article editor's API."""
    app.router.add_get("/lead/api/articles", articles_api)
    app.router.add_get("/lead/api/articles/{article_id}", article_api)
    app.router.add_post("/lead/api/articles", save_api)
