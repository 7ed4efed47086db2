"""A period of time for queries: [start, end) in UTC from dates or moments, and the SQL that keeps to it."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Any, List, Optional, Tuple, Union

from sqlalchemy.sql import ColumnElement

Moment = Union[date, datetime]


def period_bounds(since: Optional[Moment], until: Optional[Moment]) -> Tuple[Optional[datetime], Optional[datetime]]:
    """[start, end) in UTC: a date is a whole UTC day (``until`` included), a datetime that moment.

    Raises ValueError for a naive datetime, an empty period (start not before end) or ``until`` = date.max.
    """
    def bound(value: Optional[Moment], next_day: bool) -> Optional[datetime]:
        if value is None:
            return None
        if isinstance(value, datetime):
            if value.utcoffset() is None:
                raise ValueError(f"naive datetime {value!r}: give a time zone")
            return value
        try:
            return datetime.combine(value + timedelta(days=1 if next_day else 0), time(), tzinfo=timezone.utc)
        except OverflowError:
            raise ValueError(f"{value} is past the last day a period can have") from None

    start, end = bound(since, False), bound(until, True)
    if start is not None and end is not None and start >= end:
        raise ValueError(f"since {since} is not before until {until}")
    return start, end


def in_period(column: Any, start: Optional[datetime], end: Optional[datetime]) -> List[ColumnElement]:
    """The conditions keeping ``column`` in [start, end); an open end adds none."""
    conditions = []
    if start is not None:
        conditions.append(column >= start)
    if end is not None:
        conditions.append(column < end)
    return conditions
