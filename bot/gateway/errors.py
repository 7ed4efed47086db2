"""Errors to HTTP responses, in one place: every handler raises, this middleware answers ``{"error": ...}``.

A domain error (the store's, the leads' edits', the retraining's) maps to
400 (the request cannot be carried out as sent), 404 (no such thing), 409
(the state does not allow it: already decided, resolved, running), 429 (a
rate limit, with Retry-After in seconds) or 503 (the database or the bot is
unavailable: nothing was changed). aiohttp's own
HTTP exceptions (sign-in redirects, 401, 403) pass through unchanged.
"""
from __future__ import annotations

import logging
from typing import Awaitable, Callable, Tuple, Type

from aiohttp import web

from bot.gateway.limits import RateLimitedError
from bot.lead.training_edits import DuplicateExampleError, TrainingDataEditError
from bot.rasa_client import BotUnavailableError
from bot.reports.charts import UnknownChartError
from bot.store.database import StoreError
from bot.store.inbox import AlreadyDecidedError, MessageNotFoundError
from bot.store.retrain_jobs import JobNotFoundError, RetrainBusyError
from bot.store.tickets import TicketNotFoundError, TicketStateError

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class RequestError(ValueError):
    """The request is malformed or incomplete (400); the message says what to send."""


class PeriodError(RequestError):
    """The dates asked for cannot make a report (400)."""


# Most specific first: the first match decides (the store's conflicts are StoreErrors too).
STATUS_OF: Tuple[Tuple[Tuple[Type[BaseException], ...], int], ...] = (
    ((TicketNotFoundError, MessageNotFoundError, JobNotFoundError, UnknownChartError), 404),
    ((TicketStateError, AlreadyDecidedError, DuplicateExampleError, RetrainBusyError), 409),
    ((RequestError, TrainingDataEditError), 400),
    ((StoreError, BotUnavailableError), 503),
)

UNAVAILABLE = {
    StoreError: "the database is unavailable; nothing was changed, try again shortly",
    BotUnavailableError: "the bot is unavailable; try again shortly",
}


def json_error(status: int, message: str) -> web.Response:
    """A JSON error the pages' scripts show as is."""
    return web.json_response({"error": message}, status=status)


def status_of(error: BaseException) -> int:
    """The HTTP status a domain error maps to (500 for anything unexpected)."""
    return next((status for kinds, status in STATUS_OF if isinstance(error, kinds)), 500)


@web.middleware
async def domain_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer a domain error raised by ``handler`` with its status and ``{"error": message}``."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except RateLimitedError as error:
        response = json_error(429, str(error))
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
            return json_error(status, f"a retraining is already running: {error}")
        return json_error(status, str(error))
