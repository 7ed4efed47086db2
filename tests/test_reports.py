"""`python -m bot report`: every figure equals an independent tally of a generated history, on both backends."""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Dict, List, Optional

import pytest

from bot.protocol import ClosedHow
from bot.reports import DEFINITIONS, build_report, render
from bot.reports.figures import SLA_OUTCOMES
from bot.settings import PROJECT_ROOT
from bot.store.database import Store, migrate
from bot.store.feedback import record_csat, record_feedback
from bot.store.messages import NewMessage, record_message, record_messages
from bot.store.tickets import TICKET_REASONS, TicketRequest, close_ticket, open_ticket, record_agent_reply

DAYS = [date(2026, 11, 2), date(2026, 11, 3), date(2026, 11, 4)]
NOW = datetime(2026, 11, 7, 12, 0, tzinfo=timezone.utc)
ARTICLES = ["billing-refund", "account-password", "app-crash", "plans-compare"]
PLANS = ["anonymous", "free", "standard", "premium"]
AGENT = "maria@lumio.example"


def deskmate(kind: str, **extra: Any) -> Dict[str, Any]:
    return {"quick_replies": [], "metadata": {"deskmate": {"type": kind, **extra}}}


def ratio(part: int, whole: int) -> Optional[float]:
    return round(part / whole, 4) if whole else None


@dataclass
class Tally:
    """What the generator wrote, counted as it went (never read back from the database)."""

    conversations: Counter = field(default_factory=Counter)           # day -> n
    contained: Counter = field(default_factory=Counter)               # day -> n
    replies: Dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))  # day -> kind -> n
    answers: Dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))  # day -> article -> n
    helpful: Dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))  # day -> (article, bool) -> n
    tickets_by_reason: Dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    tickets_by_plan: Dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    sla: Dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))      # day -> (priority, outcome) -> n
    csat: Dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))     # day -> (group, stars) -> n
    backlog: int = 0
    overdue: int = 0


def generate(store: Store, seed: int = 20261102, conversations: int = 60) -> Tally:
    """A random but reproducible history of ``conversations`` conversations over DAYS, and its tally."""
    rng = random.Random(seed)
    tally = Tally()
    for number in range(conversations):
        cid = f"web:{number}"
        day = rng.choice(DAYS)
        key = day.isoformat()
        at = datetime(day.year, day.month, day.day, tzinfo=timezone.utc) + timedelta(minutes=rng.randrange(0, 18 * 60))
        if rng.random() < 0.1:
            # Opened the widget, never wrote: only the greeting. Not a conversation for the report.
            record_message(store, cid, "bot", "Hi! How can I help?", at, deskmate("notice"))
            continue
        tally.conversations[key] += 1
        had_ticket = False
        rated_ticket = None
        for turn in range(rng.randint(1, 3)):
            at += timedelta(minutes=1)
            record_message(store, cid, "visitor", f"question {turn}", at, {"metadata": {}})
            kind = rng.choice(["article", "article", "suggestions", "rephrase"])
            tally.replies[key][kind] += 1
            if kind == "article":
                article = rng.choice(ARTICLES)
                tally.answers[key][article] += 1
                record_messages(store, cid, [
                    NewMessage("bot", "the answer", deskmate("article", article_id=article, title=article)),
                    NewMessage("bot", "Was this helpful?", {"quick_replies": [{"title": "Yes"}, {"title": "No"}], "metadata": {}}),
                ], at)
                if rng.random() < 0.6:
                    helpful = rng.random() < 0.5
                    record_feedback(store, cid, article, helpful, at + timedelta(seconds=30))
                    tally.helpful[key][(article, helpful)] += 1
            else:
                record_message(store, cid, "bot", "did you mean", at, deskmate(kind))
        if rng.random() < 0.45:
            had_ticket = True
            at += timedelta(minutes=1)
            reason, plan = rng.choice(TICKET_REASONS), rng.choice(PLANS)
            priority = "high" if plan == "premium" else "normal"
            due = at + timedelta(minutes=rng.choice([5, 30, 240]))
            replied = rng.random() < 0.7
            if not replied and rng.random() < 0.5:
                reason = "bot_unavailable"  # outages' tickets, some taken back by the bot before due
            if rng.random() < (0.25 if replied else 0.4):
                due = NOW + timedelta(days=1)  # not due yet (replied or not)
            ticket = open_ticket(store, TicketRequest(cid, plan, priority, reason, due), at).ticket
            record_message(store, cid, "bot", "a person will help", at, deskmate("handoff", ticket=ticket.id))
            tally.tickets_by_reason[key][reason] += 1
            tally.tickets_by_plan[key][plan] += 1
            reply_at = at + timedelta(minutes=rng.choice([1, 20, 120, 600])) if replied else None
            if reply_at is not None:
                record_agent_reply(store, ticket.id, AGENT, reply_at)
                record_message(store, cid, "agent", "hello", reply_at, deskmate("agent_message"), author=AGENT)
            closed = rng.random() < 0.5
            closed_at = at + timedelta(hours=1)
            # The SLA outcome, decided here from what was written (the definition, case by case).
            if not replied and closed and closed_at <= due and reason == "bot_unavailable":
                outcome = "closed_before_due"
            elif due >= NOW:
                outcome = "not_yet_due"
            elif reply_at is not None and reply_at <= due:
                outcome = "within_sla"
            elif reply_at is not None:
                outcome = "late"
            else:
                outcome = "unanswered"
            tally.sla[key][(priority, outcome)] += 1
            if closed:
                close_ticket(store, ticket.id, f"agent:{AGENT}", closed_at, how=ClosedHow.RESOLVED)
                record_message(store, cid, "bot", "How did we do?", closed_at, deskmate("rating_request", ticket=ticket.id))
                rated_ticket = ticket.id
            else:
                tally.backlog += 1
                tally.overdue += (not replied) and due < NOW
        if not had_ticket:
            tally.contained[key] += 1
        if rng.random() < 0.5:
            stars = rng.randint(1, 5)
            # Only a rating the bot asked for counts (once per ticket); any other is refused.
            stored = record_csat(store, cid, rated_ticket, stars, at + timedelta(hours=2))
            assert (stored is not None) == (rated_ticket is not None)
            if stored is not None:
                tally.csat[key][("agent", stars)] += 1
    return tally


def expected_period(tally: Tally, keys: List[str]) -> Dict[str, Any]:
    """The figures the tally says the report must show, summed over ``keys`` (days)."""
    replies = sum((tally.replies[k] for k in keys), Counter())
    answers = sum((tally.answers[k] for k in keys), Counter())
    helpful = sum((tally.helpful[k] for k in keys), Counter())
    sla = sum((tally.sla[k] for k in keys), Counter())
    csat = sum((tally.csat[k] for k in keys), Counter())
    conversations = sum(tally.conversations[k] for k in keys)
    contained = sum(tally.contained[k] for k in keys)
    answered = replies["article"] + replies["suggestions"] + replies["rephrase"]
    articles = {}
    for article in set(answers) | {a for a, _ in helpful}:
        yes, no = helpful[(article, True)], helpful[(article, False)]
        articles[article] = {"answers": answers[article], "helpful": yes, "not_helpful": no,
                             "helpful_ratio": ratio(yes, yes + no)}
    csat_groups = {}
    for group in ("bot_only", "agent"):
        distribution = {str(s): csat[(group, s)] for s in range(1, 6)}
        count = sum(distribution.values())
        csat_groups[group] = {
            "count": count, "distribution": distribution,
            "average": round(sum(s * csat[(group, s)] for s in range(1, 6)) / count, 2) if count else None,
        }
    return {
        "conversations": conversations,
        "containment": ratio(contained, conversations),
        "fallback_rate": ratio(replies["suggestions"] + replies["rephrase"], answered),
        "bot_answers": answered,
        "tickets": sum(sum(tally.tickets_by_reason[k].values()) for k in keys),
        "tickets_by_reason": dict(sum((tally.tickets_by_reason[k] for k in keys), Counter())),
        "tickets_by_plan": dict(sum((tally.tickets_by_plan[k] for k in keys), Counter())),
        "articles": articles,
        "csat": csat_groups,
        "sla": {p: {outcome: sla[(p, outcome)] for outcome in SLA_OUTCOMES} for p in ("high", "normal")},
    }


def assert_period(actual: Dict[str, Any], expected: Dict[str, Any]) -> None:
    for name in ("conversations", "containment", "fallback_rate", "bot_answers", "tickets", "csat"):
        assert actual[name] == expected[name], name
    assert {k: v for k, v in actual["tickets_by_reason"].items() if v} == expected["tickets_by_reason"]
    assert {k: v for k, v in actual["tickets_by_plan"].items() if v} == expected["tickets_by_plan"]
    assert {a["article_id"]: {k: a[k] for k in ("answers", "helpful", "not_helpful", "helpful_ratio")}
            for a in actual["articles"]} == expected["articles"]
    for priority, outcomes in expected["sla"].items():
        counts = actual["first_reply_sla"][priority]
        due = outcomes["within_sla"] + outcomes["late"] + outcomes["unanswered"]
        assert counts == {"due": due, **outcomes, "share": ratio(outcomes["within_sla"], due)}, priority
    # Worst helpful ratio first; articles nobody judged come last.
    ratios = [a["helpful_ratio"] for a in actual["articles"]]
    judged = [r for r in ratios if r is not None]
    assert judged == sorted(judged) and ratios[: len(judged)] == judged


@pytest.fixture
def history(store: Store) -> Tally:
    return generate(store)


def test_every_figure_matches_the_generated_history(store: Store, history: Tally) -> None:
    report = build_report(store, now=NOW)
    keys = [d.isoformat() for d in DAYS]
    assert [d["date"] for d in report["days"]] == [k for k in keys if history.conversations[k]]
    for day in report["days"]:
        assert_period(day, expected_period(history, [day["date"]]))
    assert_period(report["total"], expected_period(history, keys))
    assert report["now"] == {"open_backlog": history.backlog, "overdue_now": history.overdue}
    # The generator exercised every branch: otherwise the comparison proves little.
    total = report["total"]
    assert total["conversations"] > 40 and 0 < total["containment"] < 1 and 0 < total["fallback_rate"] < 1
    assert len(total["tickets_by_reason"]) >= 3 and history.overdue > 0 and history.backlog > history.overdue
    # Every first-reply outcome occurs, in both priorities together.
    for outcome in SLA_OUTCOMES:
        assert sum(counts[outcome] for counts in total["first_reply_sla"].values()) > 0, outcome
    # The bot asks for a rating when a ticket closes: no bot-only conversation has one (issue 11).
    assert total["csat"]["agent"]["count"] > 0 and total["csat"]["bot_only"]["count"] == 0


def test_date_filters_keep_only_those_days(store: Store, history: Tally) -> None:
    middle = DAYS[1].isoformat()
    report = build_report(store, since=DAYS[1], until=DAYS[1], now=NOW)
    assert [d["date"] for d in report["days"]] == [middle]
    assert_period(report["total"], expected_period(history, [middle]))
    # Backlog and overdue are about now, not the dates asked for.
    assert report["now"] == {"open_backlog": history.backlog, "overdue_now": history.overdue}

    later = build_report(store, since=DAYS[1], now=NOW)
    assert_period(later["total"], expected_period(history, [d.isoformat() for d in DAYS[1:]]))
    earlier = build_report(store, until=DAYS[0], now=NOW)
    assert_period(earlier["total"], expected_period(history, [DAYS[0].isoformat()]))
    assert build_report(store, since=date(2030, 1, 1), now=NOW)["days"] == []


def test_since_after_until_is_refused(store: Store) -> None:
    with pytest.raises(ValueError):
        build_report(store, since=DAYS[2], until=DAYS[0])


def test_empty_database(store: Store) -> None:
    report = build_report(store, now=NOW)
    assert report["days"] == []
    total = report["total"]
    assert total["conversations"] == 0 and total["containment"] is None and total["fallback_rate"] is None
    assert total["articles"] == [] and total["tickets_by_reason"] == {}
    assert total["csat"]["agent"] == {"count": 0, "average": None, "distribution": {str(s): 0 for s in range(1, 6)}}
    assert report["now"] == {"open_backlog": 0, "overdue_now": 0}
    for fmt in ("text", "csv", "json"):
        assert render(report, fmt)


def test_renderings(store: Store, history: Tally) -> None:
    report = build_report(store, now=NOW)
    text = render(report, "text")
    for sentence in DEFINITIONS.values():
        assert sentence in text
    assert json.loads(render(report, "json"))["total"]["conversations"] == report["total"]["conversations"]
    lines = render(report, "csv").splitlines()
    assert lines[0] == "date,figure,key,value"
    rows = [line.split(",") for line in lines[1:]]
    conversations = {r[0]: int(r[3]) for r in rows if r[1] == "conversations"}
    assert conversations == {**{d["date"]: d["conversations"] for d in report["days"]},
                             "total": report["total"]["conversations"]}
    assert ["now", "open_backlog", "", str(history.backlog)] in rows


def test_cli_prints_json(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'report.db'}"
    migrate(url)
    store = Store(url)
    try:
        history = generate(store, seed=5, conversations=15)
    finally:
        store.dispose()
    env = {**os.environ, "DESKMATE_DATABASE_URL": url}
    done = subprocess.run(
        [sys.executable, "-m", "bot", "report", "--format", "json", "--since", DAYS[0].isoformat()],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["total"]["conversations"] == sum(history.conversations.values())
    assert report["since"] == DAYS[0].isoformat() and report["definitions"] == DEFINITIONS

    bad = subprocess.run([sys.executable, "-m", "bot", "report", "--since", "yesterday"],
                         cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "cannot make the report" in bad.stderr


def test_a_date_range_counts_conversations_on_their_first_day_only(store: Store) -> None:
    """The range reads only messages from --since on (issue 5): conversations that began earlier and went on
    inside the range stay out; one that began on --until and went on past midnight counts whole."""
    d0, d1, d2, d3 = (datetime(2026, 11, day, tzinfo=timezone.utc) for day in (2, 3, 4, 5))
    article = deskmate("article", article_id="billing-refund", title="Refunds")

    def turn(cid: str, at: datetime, kind: str = "article") -> None:
        record_message(store, cid, "visitor", "question", at, {"metadata": {}})
        record_message(store, cid, "bot", "answer", at, article if kind == "article" else deskmate(kind))

    # Began the evening before the range, went on inside it (and got a ticket inside it).
    turn("before", d0 + timedelta(hours=23, minutes=50))
    turn("before", d1 + timedelta(minutes=5), "rephrase")
    turn("before", d1 + timedelta(hours=3), "suggestions")
    open_ticket(store, TicketRequest("before", "free", "normal", "requested", d2), d1 + timedelta(hours=3))
    # Only the greeting before the range, the visitor wrote inside it: its first message is before the range.
    record_message(store, "greeted", "bot", "Hi! How can I help?", d0 + timedelta(hours=23), deskmate("notice"))
    turn("greeted", d1 + timedelta(hours=1))
    # Inside the range.
    turn("inside", d1 + timedelta(hours=10))
    turn("inside", d1 + timedelta(hours=10, minutes=1), "suggestions")
    # Began on the last day of the range, went on past midnight: every reply counts, on its first day.
    turn("late", d2 + timedelta(hours=23, minutes=58))
    turn("late", d3 + timedelta(minutes=2), "rephrase")
    turn("late", d3 + timedelta(hours=2))
    # After the range.
    turn("after", d3 + timedelta(hours=5))

    everything = build_report(store, now=NOW)
    by_day = {d["date"]: d for d in everything["days"]}
    assert {k: by_day[k]["conversations"] for k in by_day} == {"2026-11-02": 2, "2026-11-03": 1,
                                                               "2026-11-04": 1, "2026-11-05": 1}
    ranged = build_report(store, since=d1.date(), until=d2.date(), now=NOW)
    assert [d["date"] for d in ranged["days"]] == ["2026-11-03", "2026-11-04"]
    for day in ranged["days"]:
        assert day == by_day[day["date"]]
    total = ranged["total"]
    assert (total["conversations"], total["bot_answers"], total["fallbacks"]) == (2, 5, 2)
    assert total["contained"] == 2 and total["tickets"] == 1  # the ticket opened inside the range, its conversation not
    assert [(a["article_id"], a["answers"]) for a in total["articles"]] == [("billing-refund", 3)]
    assert build_report(store, since=d1.date(), now=NOW)["total"]["conversations"] == 3


def test_every_date_range_agrees_with_the_whole_report(store: Store) -> None:
    """A ranged report's days equal the same days of the whole report, whatever the range."""
    generate(store, seed=7, conversations=40)
    # Conversations going on past midnight into the next day.
    for number, day in enumerate(DAYS):
        cid = f"midnight:{number}"
        at = datetime(day.year, day.month, day.day, 23, 59, tzinfo=timezone.utc)
        record_message(store, cid, "visitor", "question", at, {"metadata": {}})
        record_message(store, cid, "bot", "answer", at + timedelta(minutes=2),
                       deskmate("article", article_id="app-crash", title="Crash"))
        record_message(store, cid, "visitor", "and another", at + timedelta(minutes=3), {"metadata": {}})
        record_message(store, cid, "bot", "did you mean", at + timedelta(minutes=3), deskmate("suggestions"))
    whole = {d["date"]: d for d in build_report(store, now=NOW)["days"]}
    for since in [None] + DAYS + [DAYS[-1] + timedelta(days=1)]:
        for until in [None] + DAYS:
            if since and until and since > until:
                continue
            ranged = build_report(store, since=since, until=until, now=NOW)
            expected = [k for k in sorted(whole) if (not since or k >= since.isoformat())
                        and (not until or k <= until.isoformat())]
            assert [d["date"] for d in ranged["days"]] == expected, (since, until)
            for day in ranged["days"]:
                assert day == whole[day["date"]], (since, until, day["date"])


def test_first_reply_sla_counts_every_ticket_due_replied_or_not(store: Store) -> None:
    """Issue 13: hand-counted tickets, one per case of the definition. Unanswered tickets past their due time
    are misses (the old figure counted only replied tickets: high read 3 of 4, 75%, and the two overdue
    unanswered ones were nowhere); tickets before their due time are counted apart, and so are those closed
    without a reply before it."""
    def at(day: int, hour: int, minute: int = 0) -> datetime:
        return datetime(2026, 11, day, hour, minute, tzinfo=timezone.utc)

    def ticket(name: str, priority: str, opened: datetime, due: datetime, reply: Optional[datetime] = None,
               closed: Optional[datetime] = None, closed_by: str = f"agent:{AGENT}",
               how: ClosedHow = ClosedHow.RESOLVED, reason: str = "requested") -> None:
        plan = "premium" if priority == "high" else "free"
        record_message(store, name, "visitor", "help", opened, {"metadata": {}})
        number = open_ticket(store, TicketRequest(name, plan, priority, reason, due), opened).ticket.id
        if reply is not None:
            record_agent_reply(store, number, AGENT, reply)
        if closed is not None:
            close_ticket(store, number, closed_by, closed, how=how)

    # High priority, opened on 3 November.
    ticket("in-time", "high", at(3, 10), at(3, 10, 5), reply=at(3, 10, 3), closed=at(3, 11))
    ticket("on-the-minute", "high", at(3, 10), at(3, 10, 5), reply=at(3, 10, 5))
    ticket("three-min-late", "high", at(3, 10), at(3, 10, 5), reply=at(3, 10, 8))
    ticket("overdue-open", "high", at(3, 12), at(3, 12, 5))  # never answered, still waiting
    ticket("overdue-resolved", "high", at(3, 12), at(3, 12, 5), closed=at(3, 13))  # resolved unanswered, after due
    # Resolved unanswered before its due time: still owed a reply, a miss once due (no hiding misses).
    ticket("resolved-early", "high", at(3, 14), at(3, 14, 5), closed=at(3, 14, 2))
    # An outage's ticket the bot took back and answered: no person's reply owed.
    ticket("bot-took-it-back", "high", at(3, 15), at(3, 15, 5), closed=at(3, 15, 1), closed_by="bot",
           how=ClosedHow.HANDED_BACK, reason="bot_unavailable")
    ticket("waiting", "high", at(3, 16), NOW + timedelta(hours=1))  # out of hours: due after now
    ticket("replied-early", "high", at(3, 16), NOW + timedelta(hours=1), reply=at(3, 16, 1))
    # Normal priority, opened on 4 November; the late one falls due after midnight, on the 5th.
    ticket("normal-in-time", "normal", at(4, 9), at(4, 13), reply=at(4, 9, 30))
    ticket("normal-midnight", "normal", at(4, 23, 50), at(5, 0, 20))
    # Due exactly now: not past yet, not overdue.
    ticket("due-now", "normal", NOW - timedelta(minutes=5), NOW)

    report = build_report(store, now=NOW)
    days = {d["date"]: d["first_reply_sla"] for d in report["days"]}
    zero = {"due": 0, "within_sla": 0, "late": 0, "unanswered": 0, "not_yet_due": 0, "closed_before_due": 0,
            "share": None}
    assert days["2026-11-03"] == {
        "high": {"due": 6, "within_sla": 2, "late": 1, "unanswered": 3, "not_yet_due": 2, "closed_before_due": 1,
                 "share": 0.3333},
        "normal": zero,
    }
    assert days["2026-11-04"] == {
        "high": zero,
        "normal": {"due": 2, "within_sla": 1, "late": 0, "unanswered": 1, "not_yet_due": 0, "closed_before_due": 0,
                   "share": 0.5},
    }
    assert days["2026-11-07"]["normal"] == {**zero, "not_yet_due": 1}
    assert report["total"]["first_reply_sla"]["high"] == days["2026-11-03"]["high"]
    # Every ticket opened counts once: due + not yet due + closed before due = tickets.
    assert report["total"]["tickets"] == 12 == sum(
        c["due"] + c["not_yet_due"] + c["closed_before_due"] for c in report["total"]["first_reply_sla"].values())
    # The overdue tickets now are exactly the unanswered ones still open.
    assert report["now"] == {"open_backlog": 8, "overdue_now": 2}

    # A ticket counts on the day it was opened, even when it falls due the next day.
    assert build_report(store, since=date(2026, 11, 5), until=date(2026, 11, 5), now=NOW)["days"] == []

    # Earlier, before the high tickets' due times had passed: they are not yet due, not misses.
    before = build_report(store, until=date(2026, 11, 3), now=at(3, 10, 4))
    assert before["total"]["first_reply_sla"]["high"] == {**zero, "not_yet_due": 9, "closed_before_due": 0}

    text = render(report, "text")
    assert "  high: within SLA 2 of 6 due (33.3%), 1 late, 3 unanswered; 2 not yet due, 1 closed before due" in text
    assert "  normal: within SLA 1 of 2 due (50.0%), 1 unanswered; 1 not yet due" in text
    rows = [line.split(",") for line in render(report, "csv").splitlines()[1:]]
    sla_rows = {(r[1], r[2]): r[3] for r in rows if r[0] == "total" and r[1].startswith("first_reply_sla_")}
    assert sla_rows == {
        ("first_reply_sla_due", "high"): "6", ("first_reply_sla_within_sla", "high"): "2",
        ("first_reply_sla_late", "high"): "1", ("first_reply_sla_unanswered", "high"): "3",
        ("first_reply_sla_not_yet_due", "high"): "2", ("first_reply_sla_closed_before_due", "high"): "1",
        ("first_reply_sla_share", "high"): "0.3333",
        ("first_reply_sla_due", "normal"): "2", ("first_reply_sla_within_sla", "normal"): "1",
        ("first_reply_sla_late", "normal"): "0", ("first_reply_sla_unanswered", "normal"): "1",
        ("first_reply_sla_not_yet_due", "normal"): "1", ("first_reply_sla_closed_before_due", "normal"): "0",
        ("first_reply_sla_share", "normal"): "0.5",
    }
    assert json.loads(render(report, "json"))["total"]["first_reply_sla"] == report["total"]["first_reply_sla"]
