"""The tenant's support rules (kb/support_policy.yml): who gets a human, when, and how fast.

Every business fact (hours, plans, reply times) comes from the YAML file;
this module only knows how to read and apply such rules. The clock is
always passed in, so every answer can be tested for any moment.

A "business day" is one day's worth of business hours: with hours 08:00 to
20:00, one business day is 12 open hours, so a ticket opened on Friday at
19:00 is due on Monday at 19:00.
"""
from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from pathlib import Path
from types import MappingProxyType
from typing import Any, Dict, FrozenSet, List, Mapping, Optional, Tuple
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.protocol import Priority, values
from bot.yaml_files import read_yaml

FALLBACK_PLAN = "anonymous"
PRIORITIES = values(Priority)
HOURS_KINDS = ("business", "always")
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# How far ahead to look for an opening before calling the policy broken
# (holidays could otherwise close every day and loop forever).
MAX_DAYS_AHEAD = 400


class PolicyError(ValueError):
    """The support policy file is missing or does not describe valid rules."""


@dataclass(frozen=True)
class BusinessHours:
    """When human agents work: on ``days`` (0 = Monday) from ``opens`` to ``closes``, local time."""

    days: FrozenSet[int]
    opens: time
    closes: time
    holidays: FrozenSet[date] = frozenset()

    @property
    def day_length(self) -> timedelta:
        """One business day's worth of open time."""
        return datetime.combine(date.min, self.closes) - datetime.combine(date.min, self.opens)

    def is_open_on(self, day: date) -> bool:
        """Whether agents work at all on ``day``."""
        return day.weekday() in self.days and day not in self.holidays


@dataclass(frozen=True)
class PlanPolicy:
    """Support for one plan: its ticket priority, its agents' hours and the first-reply target.

    ``first_reply`` counts open time when ``hours`` is "business" and
    calendar time when it is "always"; ``first_reply_amount`` and
    ``first_reply_unit`` (minutes, hours, days or business_days) are the
    target as written in the file, for messages to visitors.
    """

    name: str
    priority: str
    hours: str
    first_reply: timedelta
    first_reply_amount: int
    first_reply_unit: str

    @property
    def always_staffed(self) -> bool:
        """Whether agents answer this plan around the clock."""
        return self.hours == "always"

    @property
    def escalates_at_once(self) -> bool:
        """High-priority plans get a person at the first sign of trouble, not after a second try."""
        return self.priority == Priority.HIGH.value

    def describe_first_reply(self) -> str:
        """The first-reply target in words, e.g. "5 minutes" or "1 business day"."""
        unit = self.first_reply_unit.replace("_", " ")
        if self.first_reply_amount == 1:
            unit = unit[:-1]
        return f"{self.first_reply_amount} {unit}"


@dataclass(frozen=True)
class OnCall:
    """Who is alerted when a promise is about to be broken, and how often (the policy's ``on_call:``).

    A ticket is watched while its priority is in ``priorities``, it is not
    resolved and no agent has replied. It is alerted for when no agent is
    signed in while agents should be working for its plan, or when its
    first-reply due time is less than ``warn_before`` away (or past); at most
    once per ticket per ``repeat_every`` (counted from the ticket's opening).
    ``emails``: addresses the alert is mailed to; ``webhook``: an http(s) URL
    it is POSTed to as JSON (at least one of the two). A failed delivery is
    tried again up to ``retries`` times, ``retry_after`` apart at first and
    twice as long each time after.
    """

    priorities: FrozenSet[str]
    emails: Tuple[str, ...]
    webhook: Optional[str]
    warn_before: timedelta
    repeat_every: timedelta
    retries: int
    retry_after: timedelta

    def watches(self, priority: str) -> bool:
        """Whether tickets of ``priority`` are watched for broken promises."""
        return priority in self.priorities


@dataclass(frozen=True)
class SupportPolicy:
    """The support rules of one business, read from its support_policy.yml (``on_call``: None when it
    names nobody to alert)."""

    timezone: tzinfo
    business_hours: Optional[BusinessHours]
    plans: Mapping[str, PlanPolicy]
    on_call: Optional[OnCall] = None

    @classmethod
    def load(cls, path: Path) -> "SupportPolicy":
        """Read and validate the policy at ``path``; raises PolicyError naming the file and the problem."""
        raw = read_yaml(path, PolicyError, "the support policy")
        try:
            return cls.from_mapping(raw)
        except PolicyError as error:
            raise PolicyError(f"{path}: {error}") from error

    @classmethod
    def from_mapping(cls, raw: Any) -> "SupportPolicy":
        """Validate an already-parsed policy; raises PolicyError naming the problem."""
        if not isinstance(raw, dict):
            raise PolicyError("the policy must be a mapping with timezone, business_hours and plans")
        unknown = set(raw) - {"timezone", "business_hours", "plans", "on_call"}
        if unknown:
            raise PolicyError(f"unknown key(s) {', '.join(sorted(map(str, unknown)))}")
        zone = _parse_timezone(raw.get("timezone", "UTC"))
        hours = _parse_business_hours(raw["business_hours"]) if raw.get("business_hours") is not None else None
        plans_raw = raw.get("plans")
        if not isinstance(plans_raw, dict) or not plans_raw:
            raise PolicyError("plans: must map each plan name to its support rules")
        day_length = hours.day_length if hours is not None else None
        plans = {str(name): _parse_plan(str(name), rules, day_length) for name, rules in plans_raw.items()}
        if FALLBACK_PLAN not in plans:
            raise PolicyError(f"plans: '{FALLBACK_PLAN}' is missing (it applies to visitors and unknown plans)")
        on_call = _parse_on_call(raw["on_call"]) if raw.get("on_call") is not None else None
        return cls(timezone=zone, business_hours=hours, plans=MappingProxyType(plans), on_call=on_call)

    def for_plan(self, plan: Optional[str]) -> PlanPolicy:
        """The rules of ``plan``; a visitor's (no plan) or an unknown plan's are those of 'anonymous'."""
        return self.plans.get(plan or FALLBACK_PLAN) or self.plans[FALLBACK_PLAN]

    def is_open(self, plan: Optional[str], now: datetime) -> bool:
        """Whether human agents are working for ``plan`` at ``now`` (timezone-aware)."""
        local = _local(now, self.timezone)
        if self.for_plan(plan).always_staffed:
            return True
        return self._window_containing(local) is not None

    def next_opening(self, plan: Optional[str], now: datetime) -> datetime:
        """When agents are next working for ``plan`` (UTC): ``now`` itself while they are."""
        local = _local(now, self.timezone)
        if self.for_plan(plan).always_staffed or self._window_containing(local) is not None:
            return _utc(now)
        return _utc(self._next_window(local)[0])

    def sla_due(self, plan: Optional[str], opened_at: datetime) -> datetime:
        """When the first human reply is due (UTC) for a ticket of ``plan`` opened at ``opened_at``."""
        moment = _local(opened_at, self.timezone)
        rules = self.for_plan(plan)
        if rules.always_staffed:
            return _utc(opened_at) + rules.first_reply
        remaining = rules.first_reply
        while True:
            window = self._window_containing(moment) or self._next_window(moment)
            start = max(moment, window[0])
            # Differences in UTC: a daylight-saving change inside a window must not skew the clock.
            available = _utc(window[1]) - _utc(start)
            if remaining <= available:
                return _utc(start) + remaining
            remaining -= available
            moment = window[1]

    def describe_hours(self) -> str:
        """The business hours in words, e.g. "Monday to Friday, 08:00 to 20:00 UTC"."""
        hours = self._hours()
        names = [calendar.day_name[day] for day in sorted(hours.days)]
        consecutive = sorted(hours.days) == list(range(min(hours.days), max(hours.days) + 1))
        days = f"{names[0]} to {names[-1]}" if consecutive and len(names) > 2 else ", ".join(names)
        return f"{days}, {hours.opens:%H:%M} to {hours.closes:%H:%M} {self.zone_name}"

    def describe_moment(self, moment: datetime) -> str:
        """A time in the policy's zone, e.g. "Monday 24 November, 08:00 UTC"."""
        local = _local(moment, self.timezone)
        return f"{local:%A} {local.day} {local:%B}, {local:%H:%M} {self.zone_name}"

    @property
    def zone_name(self) -> str:
        """The policy's time zone as people read it."""
        return str(getattr(self.timezone, "key", None) or self.timezone)

    def _hours(self) -> BusinessHours:
        assert self.business_hours is not None, "validated in from_mapping"
        return self.business_hours

    def _window(self, day: date) -> Tuple[datetime, datetime]:
        hours = self._hours()
        return (
            datetime.combine(day, hours.opens, tzinfo=self.timezone),
            datetime.combine(day, hours.closes, tzinfo=self.timezone),
        )

    def _window_containing(self, local: datetime) -> Optional[Tuple[datetime, datetime]]:
        """Today's business window if ``local`` falls inside it (open time included, close time not)."""
        if not self._hours().is_open_on(local.date()):
            return None
        opens, closes = self._window(local.date())
        return (opens, closes) if opens <= local < closes else None

    def _next_window(self, local: datetime) -> Tuple[datetime, datetime]:
        """The first business window that opens after ``local``."""
        day = local.date()
        for _ in range(MAX_DAYS_AHEAD):
            if self._hours().is_open_on(day):
                opens, closes = self._window(day)
                if opens > local:
                    return opens, closes
            day += timedelta(days=1)
        raise PolicyError(f"business_hours: no opening within {MAX_DAYS_AHEAD} days of {local.isoformat()}")


def _local(moment: datetime, zone: tzinfo) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}: pass a timezone-aware time")
    return moment.astimezone(zone)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc)


def _parse_timezone(value: Any) -> tzinfo:
    if not isinstance(value, str) or not value:
        raise PolicyError(f"timezone: expected an IANA name such as UTC or Europe/Paris, got {value!r}")
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise PolicyError(f"timezone: unknown time zone {value!r}") from error


def _parse_time(where: str, value: Any) -> time:
    if not isinstance(value, str):
        raise PolicyError(f'{where}: write the time as a quoted "HH:MM", got {value!r}')
    try:
        return time.fromisoformat(value)
    except ValueError as error:
        raise PolicyError(f'{where}: {value!r} is not a time "HH:MM"') from error


def _parse_business_hours(raw: Any) -> BusinessHours:
    if not isinstance(raw, dict):
        raise PolicyError("business_hours: must be a mapping with days, open and close")
    unknown = set(raw) - {"days", "open", "close", "holidays"}
    if unknown:
        raise PolicyError(f"business_hours: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    days_raw = raw.get("days")
    if not isinstance(days_raw, list) or not days_raw:
        raise PolicyError(f"business_hours.days: a list of days among {', '.join(DAY_NAMES)}")
    days = set()
    for day in days_raw:
        if str(day).lower() not in DAY_NAMES:
            raise PolicyError(f"business_hours.days: unknown day {day!r} (use {', '.join(DAY_NAMES)})")
        days.add(DAY_NAMES.index(str(day).lower()))
    opens = _parse_time("business_hours.open", raw.get("open"))
    closes = _parse_time("business_hours.close", raw.get("close"))
    if not opens < closes:
        raise PolicyError(f"business_hours: open ({opens:%H:%M}) must be before close ({closes:%H:%M})")
    holidays = set()
    for value in raw.get("holidays") or []:
        if isinstance(value, date) and not isinstance(value, datetime):
            holidays.add(value)
            continue
        try:
            holidays.add(date.fromisoformat(str(value)))
        except ValueError as error:
            raise PolicyError(f"business_hours.holidays: {value!r} is not a date YYYY-MM-DD") from error
    return BusinessHours(days=frozenset(days), opens=opens, closes=closes, holidays=frozenset(holidays))


FIRST_REPLY_UNITS: Dict[str, timedelta] = {
    "minutes": timedelta(minutes=1),
    "hours": timedelta(hours=1),
    "days": timedelta(days=1),
}


def _parse_plan(name: str, raw: Any, day_length: Optional[timedelta]) -> PlanPolicy:
    """One plan's rules; ``day_length`` is one business day of open time (None without business hours)."""
    where = f"plans.{name}"
    if not isinstance(raw, dict):
        raise PolicyError(f"{where}: must be a mapping with priority, hours and first_reply")
    unknown = set(raw) - {"priority", "hours", "first_reply"}
    if unknown:
        raise PolicyError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    priority = raw.get("priority")
    if priority not in PRIORITIES:
        raise PolicyError(f"{where}.priority: expected one of {', '.join(PRIORITIES)}, got {priority!r}")
    hours = raw.get("hours")
    if hours not in HOURS_KINDS:
        raise PolicyError(f"{where}.hours: expected one of {', '.join(HOURS_KINDS)}, got {hours!r}")
    if hours == "business" and day_length is None:
        raise PolicyError(f"{where}.hours: 'business', but the policy has no business_hours")
    first = raw.get("first_reply")
    units: List[str] = ["business_days", *FIRST_REPLY_UNITS] if hours == "business" else list(FIRST_REPLY_UNITS)
    if not isinstance(first, dict) or len(first) != 1:
        raise PolicyError(f"{where}.first_reply: one of {', '.join(units)} with a number, e.g. {{{units[0]}: 1}}")
    ((unit, amount),) = first.items()
    if unit not in units:
        extra = " (business_days needs hours: business)" if unit == "business_days" else ""
        raise PolicyError(f"{where}.first_reply: unit {unit!r} not allowed here{extra}; use one of {', '.join(units)}")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise PolicyError(f"{where}.first_reply.{unit}: a whole number above 0, got {amount!r}")
    step = day_length if unit == "business_days" else FIRST_REPLY_UNITS[unit]
    assert step is not None, "business hours checked above"
    duration = step * amount
    return PlanPolicy(
        name=name, priority=priority, hours=hours, first_reply=duration, first_reply_amount=amount, first_reply_unit=unit
    )


# An address as people write one: something@domain.tld, no spaces (full RFC 5322 is not the point here).
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
DURATION_UNITS: Dict[str, timedelta] = {"seconds": timedelta(seconds=1), **FIRST_REPLY_UNITS}
ON_CALL_DEFAULTS: Dict[str, Any] = {
    "priorities": [Priority.HIGH.value],
    "warn_before": {"minutes": 2},
    "repeat_every": {"minutes": 15},
    "retries": 5,
    "retry_after": {"seconds": 30},
}


def _parse_duration(where: str, raw: Any) -> timedelta:
    """``{minutes: N}`` (or seconds, hours, days) as a timedelta; N a whole number above 0."""
    if not isinstance(raw, dict) or len(raw) != 1:
        raise PolicyError(f"{where}: one of {', '.join(DURATION_UNITS)} with a number, e.g. {{minutes: 5}}")
    ((unit, amount),) = raw.items()
    if unit not in DURATION_UNITS:
        raise PolicyError(f"{where}: unknown unit {unit!r}; use one of {', '.join(DURATION_UNITS)}")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise PolicyError(f"{where}.{unit}: a whole number above 0, got {amount!r}")
    return DURATION_UNITS[unit] * amount


def _parse_on_call(raw: Any) -> OnCall:
    """The ``on_call`` section; raises PolicyError naming the problem."""
    if not isinstance(raw, dict):
        raise PolicyError("on_call: must be a mapping with email and/or webhook")
    unknown = set(raw) - {"email", "webhook", *ON_CALL_DEFAULTS}
    if unknown:
        raise PolicyError(f"on_call: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    values = {**ON_CALL_DEFAULTS, **{key: value for key, value in raw.items() if value is not None}}
    emails_raw = raw.get("email") or []
    if isinstance(emails_raw, str):
        emails_raw = [emails_raw]
    if not isinstance(emails_raw, list):
        raise PolicyError("on_call.email: an address or a list of addresses")
    emails = []
    for address in emails_raw:
        if not isinstance(address, str) or not EMAIL_PATTERN.match(address.strip()):
            raise PolicyError(f"on_call.email: {address!r} is not an e-mail address")
        emails.append(address.strip())
    webhook = raw.get("webhook")
    if webhook is not None:
        parts = urlsplit(webhook) if isinstance(webhook, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise PolicyError(f"on_call.webhook: {webhook!r} is not an http(s) URL")
    if not emails and webhook is None:
        raise PolicyError("on_call: name someone to alert: email (addresses) and/or webhook (a URL)")
    priorities = values["priorities"]
    if not isinstance(priorities, list) or not priorities or any(p not in PRIORITIES for p in priorities):
        raise PolicyError(f"on_call.priorities: a list among {', '.join(PRIORITIES)}, got {priorities!r}")
    retries = values["retries"]
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise PolicyError(f"on_call.retries: a whole number, 0 or more, got {retries!r}")
    return OnCall(
        priorities=frozenset(priorities),
        emails=tuple(emails),
        webhook=webhook,
        warn_before=_parse_duration("on_call.warn_before", values["warn_before"]),
        repeat_every=_parse_duration("on_call.repeat_every", values["repeat_every"]),
        retries=retries,
        retry_after=_parse_duration("on_call.retry_after", values["retry_after"]),
    )
