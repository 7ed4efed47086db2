"""The period a lead asks for (``since`` / ``until`` in the query), shared by the console's pages and API."""
from __future__ import annotations

from datetime import date, timedelta
from typing import Tuple

from aiohttp import web

from bot.gateway.errors import PeriodError
from bot.gateway.keys import CLOCK

DEFAULT_DAYS = 30
MAX_DAYS = 366


def report_range(request: web.Request) -> Tuple[date, date]:
    """``since`` and ``until`` from the query (ISO dates); by default the last 30 days to today.

    Raises PeriodError (400) for dates that are not ISO dates, backwards, or more than 366 days apart.
    """
    today = request.app[CLOCK]().date()
    try:
        until = date.fromisoformat(request.query["until"]) if request.query.get("until") else today
        since = date.fromisoformat(request.query["since"]) if request.query.get("since") else until - timedelta(days=DEFAULT_DAYS - 1)
    except ValueError:
        raise PeriodError("dates must look like 2026-11-23") from None
    if since > until:
        raise PeriodError(f"the start ({since}) is after the end ({until})")
    if (until - since).days >= MAX_DAYS:
        raise PeriodError(f"at most {MAX_DAYS} days at a time; download the CSV per period for more")
    return since, until
