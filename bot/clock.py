"""The clock every part of Deskmate reads "now" from: injected once per process, never mocked.

``DESKMATE_FIXED_NOW`` (``Settings.fixed_now``, ISO 8601 with a zone) stops it
at a moment for demos and tests of out-of-hours behaviour; otherwise it is
the real time in UTC.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

Clock = Callable[[], datetime]


def utc_clock() -> datetime:
    """The real clock, timezone-aware, in UTC."""
    return datetime.now(timezone.utc)


def fixed_clock(moment: datetime) -> Clock:
    """A clock stopped at ``moment``; raises ValueError for a naive time."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a fixed clock needs a timezone-aware time")
    return lambda: moment


def clock_for(fixed_now: str) -> Clock:
    """The process's clock: stopped at ``fixed_now`` (ISO 8601 with a zone) when given, else the real one.

    Raises ValueError when ``fixed_now`` is not an aware ISO 8601 time.
    """
    return fixed_clock(datetime.fromisoformat(fixed_now)) if fixed_now else utc_clock
