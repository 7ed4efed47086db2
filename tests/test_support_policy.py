"""The support policy: who gets a person, when, and by when the first reply is due."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from textwrap import dedent

import pytest

from bot.handoff.policy import PolicyError, SupportPolicy
from bot.settings import PROJECT_ROOT

UTC = timezone.utc
POLICY_FILE = PROJECT_ROOT / "kb" / "support_policy.yml"


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment in the week of Monday 16 November 2026 (day 16 = Monday ... 22 = Sunday, 23 = next Monday), UTC."""
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


MONDAY, TUESDAY, WEDNESDAY, THURSDAY, FRIDAY, SATURDAY, SUNDAY, NEXT_MONDAY, NEXT_TUESDAY = range(16, 25)


def test_the_calendar_helper_names_the_right_weekdays() -> None:
    assert [at(d, 0).strftime("%a") for d in (MONDAY, THURSDAY, FRIDAY, SATURDAY, SUNDAY, NEXT_MONDAY)] == [
        "Mon", "Thu", "Fri", "Sat", "Sun", "Mon",
    ]


@pytest.fixture(scope="module")
def lumio() -> SupportPolicy:
    return SupportPolicy.load(POLICY_FILE)


def write_policy(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "support_policy.yml"
    path.write_text(dedent(text))
    return path


# --- Lumio's rules, as the spec states them -------------------------------------------------------


def test_lumio_premium_is_high_priority_around_the_clock_and_the_others_normal(lumio: SupportPolicy) -> None:
    assert lumio.for_plan("premium").priority == "high"
    assert lumio.for_plan("premium").always_staffed
    for plan in ("anonymous", "free", "standard"):
        assert lumio.for_plan(plan).priority == "normal"
        assert not lumio.for_plan(plan).always_staffed


def test_visitors_and_unknown_plans_are_treated_like_free(lumio: SupportPolicy) -> None:
    free = lumio.for_plan("free")
    for plan in (None, "", "anonymous", "platinum"):
        rules = lumio.for_plan(plan)
        assert (rules.priority, rules.hours, rules.first_reply) == (free.priority, free.hours, free.first_reply)


def test_first_reply_targets_are_as_written_for_messages(lumio: SupportPolicy) -> None:
    targets = {p: (lumio.for_plan(p).first_reply_amount, lumio.for_plan(p).first_reply_unit) for p in lumio.plans}
    assert targets == {
        "anonymous": (2, "business_days"),
        "free": (2, "business_days"),
        "standard": (1, "business_days"),
        "premium": (5, "minutes"),
    }


# --- in hours, out of hours, weekends -------------------------------------------------------------


def test_agents_work_on_weekdays_from_eight_to_eight_utc(lumio: SupportPolicy) -> None:
    assert lumio.is_open("free", at(WEDNESDAY, 8, 0))
    assert lumio.is_open("standard", at(WEDNESDAY, 19, 59))
    assert not lumio.is_open("free", at(WEDNESDAY, 7, 59))
    assert not lumio.is_open("free", at(WEDNESDAY, 20, 0))
    assert not lumio.is_open("standard", at(SATURDAY, 12, 0))
    assert not lumio.is_open("anonymous", at(SUNDAY, 12, 0))


def test_premium_agents_are_there_at_three_on_sunday_morning(lumio: SupportPolicy) -> None:
    assert lumio.is_open("premium", at(SUNDAY, 3, 0))
    assert lumio.next_opening("premium", at(SUNDAY, 3, 0)) == at(SUNDAY, 3, 0)


def test_the_next_opening_is_now_in_hours_and_the_next_morning_out_of_hours(lumio: SupportPolicy) -> None:
    assert lumio.next_opening("free", at(TUESDAY, 10, 30)) == at(TUESDAY, 10, 30)
    assert lumio.next_opening("free", at(TUESDAY, 6, 0)) == at(TUESDAY, 8, 0)
    assert lumio.next_opening("free", at(TUESDAY, 21, 0)) == at(WEDNESDAY, 8, 0)


def test_the_next_opening_after_friday_evening_or_a_weekend_is_monday_morning(lumio: SupportPolicy) -> None:
    assert lumio.next_opening("standard", at(FRIDAY, 20, 0)) == at(NEXT_MONDAY, 8, 0)
    assert lumio.next_opening("standard", at(SATURDAY, 10, 0)) == at(NEXT_MONDAY, 8, 0)
    assert lumio.next_opening("free", at(SUNDAY, 23, 59)) == at(NEXT_MONDAY, 8, 0)


def test_a_standard_ticket_in_hours_is_due_one_business_day_later(lumio: SupportPolicy) -> None:
    assert lumio.sla_due("standard", at(TUESDAY, 10, 0)) == at(WEDNESDAY, 10, 0)


def test_a_standard_ticket_on_friday_evening_is_due_on_monday_evening(lumio: SupportPolicy) -> None:
    assert lumio.sla_due("standard", at(FRIDAY, 19, 0)) == at(NEXT_MONDAY, 19, 0)


def test_a_ticket_opened_on_saturday_starts_its_clock_on_monday_morning(lumio: SupportPolicy) -> None:
    assert lumio.sla_due("standard", at(SATURDAY, 10, 0)) == at(NEXT_MONDAY, 20, 0)


def test_a_ticket_opened_before_hours_starts_its_clock_at_opening(lumio: SupportPolicy) -> None:
    assert lumio.sla_due("standard", at(TUESDAY, 3, 0)) == at(TUESDAY, 20, 0)
    assert lumio.sla_due("standard", at(MONDAY, 20, 0)) == at(TUESDAY, 20, 0)


def test_a_free_ticket_is_due_two_business_days_later(lumio: SupportPolicy) -> None:
    assert lumio.sla_due("free", at(TUESDAY, 10, 0)) == at(THURSDAY, 10, 0)
    assert lumio.sla_due("free", at(FRIDAY, 19, 0)) == at(NEXT_TUESDAY, 19, 0)
    assert lumio.sla_due(None, at(FRIDAY, 19, 0)) == at(NEXT_TUESDAY, 19, 0)


def test_a_premium_ticket_at_three_on_sunday_is_due_five_minutes_later(lumio: SupportPolicy) -> None:
    assert lumio.sla_due("premium", at(SUNDAY, 3, 0)) == at(SUNDAY, 3, 5)


def test_due_times_come_back_in_utc_whatever_the_zone_of_the_input(lumio: SupportPolicy) -> None:
    paris_evening = datetime(2026, 11, 20, 20, 0, tzinfo=timezone(timedelta(hours=1)))  # Friday 19:00 UTC
    due = lumio.sla_due("standard", paris_evening)
    assert due == at(NEXT_MONDAY, 19, 0)
    assert due.utcoffset() == timedelta(0)


@pytest.mark.parametrize("plan", ["free", "premium"])
def test_a_naive_clock_is_refused(lumio: SupportPolicy, plan: str) -> None:
    naive = datetime(2026, 11, 18, 10, 0)
    for ask in (lumio.is_open, lumio.next_opening, lumio.sla_due):
        with pytest.raises(ValueError, match="naive"):
            ask(plan, naive)


# --- other businesses' rules ----------------------------------------------------------------------


def test_business_hours_follow_the_policy_time_zone_across_daylight_saving(tmp_path: Path) -> None:
    policy = SupportPolicy.load(
        write_policy(
            tmp_path,
            """
            timezone: Europe/Paris
            business_hours: {days: [mon, tue, wed, thu, fri], open: "09:00", close: "17:00"}
            plans:
              anonymous: {priority: normal, hours: business, first_reply: {business_days: 1}}
            """,
        )
    )
    # 9:00 in Paris is 08:00 UTC in winter and 07:00 UTC in summer.
    assert policy.is_open(None, datetime(2026, 1, 7, 8, 0, tzinfo=UTC))
    assert not policy.is_open(None, datetime(2026, 7, 8, 6, 30, tzinfo=UTC))
    assert policy.is_open(None, datetime(2026, 7, 8, 7, 0, tzinfo=UTC))
    # Opened Friday 27 March 2026 at 16:00 Paris (15:00 UTC): 1 h that day, 7 h on Monday 30 March,
    # after the clocks went forward: due 16:00 Paris summer time = 14:00 UTC.
    assert policy.sla_due(None, datetime(2026, 3, 27, 15, 0, tzinfo=UTC)) == datetime(2026, 3, 30, 14, 0, tzinfo=UTC)


def test_holidays_are_skipped(tmp_path: Path) -> None:
    policy = SupportPolicy.load(
        write_policy(
            tmp_path,
            """
            business_hours: {days: [mon, tue, wed, thu, fri], open: "08:00", close: "20:00", holidays: [2026-12-25]}
            plans:
              anonymous: {priority: normal, hours: business, first_reply: {hours: 4}}
            """,
        )
    )
    christmas_eve_evening = datetime(2026, 12, 24, 18, 0, tzinfo=UTC)  # Thursday; Friday is a holiday
    assert policy.sla_due(None, christmas_eve_evening) == datetime(2026, 12, 28, 10, 0, tzinfo=UTC)
    assert not policy.is_open(None, datetime(2026, 12, 25, 12, 0, tzinfo=UTC))


def test_a_policy_without_business_hours_works_when_every_plan_is_always_staffed(tmp_path: Path) -> None:
    policy = SupportPolicy.load(
        write_policy(tmp_path, "plans:\n  anonymous: {priority: high, hours: always, first_reply: {days: 1}}\n")
    )
    assert policy.sla_due("x", at(SATURDAY, 10, 0)) == at(SUNDAY, 10, 0)
    assert policy.is_open("x", at(SUNDAY, 3, 0))


BROKEN_POLICIES = {
    "no anonymous plan": (
        'business_hours: {days: [mon], open: "08:00", close: "20:00"}\n'
        "plans:\n  free: {priority: normal, hours: business, first_reply: {business_days: 2}}\n",
        "'anonymous' is missing",
    ),
    "unquoted time": (
        "business_hours: {days: [mon], open: 8, close: \"20:00\"}\n"
        "plans:\n  anonymous: {priority: normal, hours: business, first_reply: {business_days: 2}}\n",
        "business_hours.open",
    ),
    "closing before opening": (
        'business_hours: {days: [mon], open: "20:00", close: "08:00"}\n'
        "plans:\n  anonymous: {priority: normal, hours: business, first_reply: {business_days: 2}}\n",
        "must be before close",
    ),
    "unknown day": (
        'business_hours: {days: [mon, funday], open: "08:00", close: "20:00"}\n'
        "plans:\n  anonymous: {priority: normal, hours: business, first_reply: {business_days: 2}}\n",
        "unknown day 'funday'",
    ),
    "unknown priority": (
        "plans:\n  anonymous: {priority: urgent, hours: always, first_reply: {minutes: 5}}\n",
        "plans.anonymous.priority",
    ),
    "business days around the clock": (
        "plans:\n  anonymous: {priority: high, hours: always, first_reply: {business_days: 1}}\n",
        "business_days needs hours: business",
    ),
    "business hours missing": (
        "plans:\n  anonymous: {priority: normal, hours: business, first_reply: {business_days: 1}}\n",
        "no business_hours",
    ),
    "two reply targets": (
        "plans:\n  anonymous: {priority: high, hours: always, first_reply: {minutes: 5, hours: 1}}\n",
        "plans.anonymous.first_reply",
    ),
    "negative target": (
        "plans:\n  anonymous: {priority: high, hours: always, first_reply: {minutes: -5}}\n",
        "a whole number above 0",
    ),
    "unknown time zone": (
        "timezone: Mars/Olympus\nplans:\n  anonymous: {priority: high, hours: always, first_reply: {minutes: 5}}\n",
        "unknown time zone 'Mars/Olympus'",
    ),
    "misspelt key": (
        "plans:\n  anonymous: {priority: high, hours: always, first_reply: {minutes: 5}, sla: 3}\n",
        "unknown key(s) sla",
    ),
    "not yaml": ("plans: [unclosed\n", "not valid YAML"),
    "a list": ("- premium\n", "must be a mapping"),
}


@pytest.mark.parametrize("case", sorted(BROKEN_POLICIES))
def test_a_broken_policy_file_is_refused_naming_the_file_and_the_problem(tmp_path: Path, case: str) -> None:
    text, problem = BROKEN_POLICIES[case]
    path = write_policy(tmp_path, text)
    with pytest.raises(PolicyError) as caught:
        SupportPolicy.load(path)
    assert str(path) in str(caught.value)
    assert problem in str(caught.value)


def test_a_missing_policy_file_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        SupportPolicy.load(tmp_path / "nowhere.yml")
