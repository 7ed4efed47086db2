"""Errors to HTTP responses, in one place: every handler raises, this middleware answers ``{"error": ...}``.

A domain error (the store's, the leads' edits', the retraining's) maps to
400 (the request cannot be carried out as sent; a refused article also
lists its ``problems`` and the ``fields`` they are about), 404 (no such
thing), 409 (the state does not allow it: already decided, resolved,
running, an article id taken or its file changed meanwhile), 429 (a
rate limit, with Retry-After in seconds) or 503 (the database or the bot is
unavailable: nothing was changed). aiohttp's own
HTTP exceptions (sign-in redirects, 401, 403, 404, 405, 413) pass through
unchanged on pages and become ``{"error": ...}`` on the APIs.

No message names a place on the server: every absolute path in one (a file
of kb/ or data/nlu/ an edit was refused for, an OSError's file name) is
shown relative to the project as the lead knows it ("kb/billing/x.md"), or
by its name alone when it lies elsewhere (bot/public_paths.py).
"""
from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, List, Tuple, Type

from aiohttp import web

from bot.gateway.keys import SETTINGS
from bot.gateway.limits import RateLimitedError
from bot.lead.article_edits import ArticleChangedError, ArticleExistsError, ArticleRefusedError
from bot.lead.training_edits import DuplicateExampleError, TrainingDataEditError
from bot.public_paths import Root, public_message, roots_of
from bot.rasa_client import BotUnavailableError
from bot.settings import Settings
from bot.reports.charts import UnknownChartError
from bot.store.database import StoreError
from bot.store.inbox import AlreadyDecidedError, MessageNotFoundError
from bot.store.retrain_jobs import JobNotFoundError, RetrainBusyError
from bot.store.tickets import TicketNotFoundError, TicketStateError

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class RequestError(ValueError):
    """The request is malformed or incomplete (400); the message says what to send."""


# Ids are database integers: anything else (words, negative, beyond 64 bits) names nothing.
MAX_ID = 2**63 - 1


def path_id(request: web.Request, name: str, error: Type[Exception]) -> int:
    """The whole-number id in the URL's ``{name}``; ``error`` ("no such ...", a 404) for anything else."""
    raw = request.match_info[name]
    if raw.isdigit() and 0 < int(raw) <= MAX_ID:
        return int(raw)
    raise error(f"no such {name.replace('_id', '').replace('_', ' ')}: {raw[:40]!r}")


async def json_body(request: web.Request, shape: str) -> Any:
    """The request's JSON body; RequestError (400) naming ``shape`` for a body that is not JSON
    (nested beyond what the parser can follow included)."""
    try:
        return await request.json() if request.can_read_body else None
    except (ValueError, RecursionError):
        raise RequestError(f"send JSON: {shape}") from None


class PeriodError(RequestError):
    """The dates asked for cannot make a report (400)."""


# Most specific first: the first match decides (the store's conflicts are StoreErrors too).
STATUS_OF: Tuple[Tuple[Tuple[Type[BaseException], ...], int], ...] = (
    ((TicketNotFoundError, MessageNotFoundError, JobNotFoundError, UnknownChartError), 404),
    ((TicketStateError, AlreadyDecidedError, DuplicateExampleError, RetrainBusyError, ArticleExistsError,
      ArticleChangedError), 409),
    ((RequestError, TrainingDataEditError), 400),
    ((StoreError, BotUnavailableError), 503),
)

UNAVAILABLE = {
    StoreError: "the database is unavailable; nothing was changed, try again shortly",
    BotUnavailableError: "the bot is unavailable; try again shortly",
}


def path_roots(settings: Settings) -> List[Root]:
    """The server's folders a message may name and how a lead reads them (bot/public_paths.py)."""
    return roots_of([(settings.kb_dir, "kb"), (settings.nlu_dir, "data/nlu"), (settings.var_dir, "var"),
                     (settings.project_root, "")])


def request_message(request: web.Request, text: str) -> str:
    """``text`` fit to show the caller of ``request``: no server paths (``public_message``)."""
    return public_message(text, path_roots(request.app[SETTINGS]))


def json_error(status: int, message: str) -> web.Response:
    """A JSON error the pages' scripts show as is."""
    return web.json_response({"error": message}, status=status)


API_PREFIXES = ("/api/", "/agent/api/", "/lead/api/", "/lead/report", "/lead/charts/", "/lead/audit.csv")


def is_api(path: str) -> bool:
    """Whether ``path`` is answered in JSON (the APIs, downloads and charts), not as a page."""
    return path.startswith(API_PREFIXES)


def status_of(error: BaseException) -> int:
    """The HTTP status a domain error maps to (500 for anything unexpected)."""
    return next((status for kinds, status in STATUS_OF if isinstance(error, kinds)), 500)


@web.middleware
async def domain_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer a domain error raised by ``handler`` with its status and ``{"error": message}``."""
    try:
        return await handler(request)
    except web.HTTPException as error:
        if error.status < 400 or not is_api(request.path) or error.content_type == "application/json":
            raise
        # An API caller gets JSON for aiohttp's own errors too (404, 405, 413, a CSRF refusal).
        plain = error.text if error.text and not error.text.startswith(f"{error.status}:") else error.reason
        response = json_error(error.status, plain)
        for header in ("Allow", "Retry-After"):
            if header in error.headers:
                response.headers[header] = error.headers[header]
        return response
    except RateLimitedError as error:
        response = json_error(error.status, str(error))
        response.headers["Retry-After"] = str(error.retry_after)
        return response
    except Exception as error:  # noqa: BLE001 (mapped below; anything else is re-raised as a 500)
        status = status_of(error)
        if status == 500:
            raise
        if status == 503:
            logger.error("gateway: %s %s: %s", request.method, request.path, error)
            kind = StoreError if isinstance(error, StoreError) else BotUnavailableError
            return json_error(status, UNAVAILABLE[kind])
        if isinstance(error, RetrainBusyError):
            return json_error(status, request_message(request, f"a retraining is already running: {error}"))
        if isinstance(error, ArticleRefusedError):
            # The article editor lists every problem, and marks the fields named.
            return web.json_response({
                "error": request_message(request, f"Not saved: {error}"),
                "problems": [request_message(request, problem) for problem in error.problems],
                "fields": error.fields,
            }, status=status)
        return json_error(status, request_message(request, str(error)))
