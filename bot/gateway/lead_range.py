"""The period a lead asks for (``since`` / ``until`` in the query), shared by the console's pages and API."""
from __future__ import annotations

from datetime import date, timedelta
from typing import Optional, Tuple

from aiohttp import web

from bot.gateway.errors import PeriodError
from bot.gateway.keys import CLOCK

DEFAULT_DAYS = 30
MAX_DAYS = 366


FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(9998, 12, 31)  # a day after LAST_DAY still fits in a datetime


def query_day(request: web.Request, name: str) -> Optional[date]:
    """The ISO date in query parameter ``name``, or None when absent or empty.

    Raises PeriodError (400) for anything else or a day outside 1970-01-01 .. 9998-12-31.
    """
    text = request.query.get(name)
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise PeriodError("dates must look like 2026-11-23") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise PeriodError(f"dates must be between {FIRST_DAY} and {LAST_DAY}")
    return day


def report_range(request: web.Request) -> Tuple[date, date]:
    """``since`` and ``until`` from the query (ISO dates); by default the last 30 days to today.

    Raises PeriodError (400) for dates that are not ISO dates, out of range
    (``query_day``), backwards, or more than 366 days apart.
    """
    until = query_day(request, "until") or request.app[CLOCK]().date()
    since = query_day(request, "since") or until - timedelta(days=DEFAULT_DAYS - 1)
    if since > until:
        raise PeriodError(f"the start ({since}) is after the end ({until})")
    if (until - since).days >= MAX_DAYS:
        raise PeriodError(f"at most {MAX_DAYS} days at a time; download the CSV per period for more")
    return since, until
