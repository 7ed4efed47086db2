"""The support leads' figures, computed by the database (GROUP BY), never row by row in Python.

``build_report(url, since, until, now)`` returns a plain dict (JSON-ready):
one entry per UTC day and a total, plus what is true now (backlog, overdue).
Only aggregated rows (a few per day, article, reason...) reach Python; the
totals are sums of the days, each row belonging to exactly one day.

Days: a conversation's figures count on the UTC date of its first message,
a ticket's on the date it was opened (its first reply against the SLA too,
whenever it fell due), feedback on the date it was given.
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any, Dict, Optional

from sqlalchemy import Date, and_, case, cast, exists, func, literal_column, null, select, text, union_all
from sqlalchemy.orm import aliased
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.selectable import CTE, Select

from bot.protocol import ANSWER_KINDS, FALLBACK_KINDS, MessageKind, Sender, TicketReason, TicketStatus, values
from bot.store.database import Store, store_errors
from bot.store.models import TICKET_PRIORITIES, Feedback, Message, Ticket
from bot.store.period import in_period, period_bounds

# One sentence per figure: printed under --format text, shipped in the JSON.
DEFINITIONS: Dict[str, str] = {
    "conversations": "Conversations with at least one visitor message, counted on the UTC day of their first message.",
    "containment": "Share of those conversations that never got a ticket (the bot handled them alone).",
    "fallback_rate": "Bot replies offering suggestions or asking to rephrase, divided by all bot replies to a "
                     "visitor question (article + suggestions + rephrase).",
    "tickets": "Tickets opened that day (UTC), in total, by reason and by the customer's plan.",
    "article_answers": "Bot messages answering with an article, per article (day of the conversation's first message).",
    "article_helpful": "Helpful and not-helpful verdicts per article and helpful / (helpful + not helpful); "
                       "worst ratio first.",
    "csat": "Average and 1-5 distribution of ratings, split into bot-only conversations (no ticket) "
            "and agent conversations (a ticket), on the day the rating was given.",
    "first_reply_sla": "Per priority, tickets opened that day whose first-reply due time has passed (due): "
                       "within_sla if an agent first replied at or before it, late if after it, unanswered if "
                       "no agent has replied (still waiting, or closed without a reply: a miss); "
                       "share = within_sla / due. Tickets before their due time, replied or not, are not_yet_due; "
                       "tickets an outage opened (reason bot_unavailable) that were closed without an agent reply "
                       "at or before their due time (the bot answered again) are closed_before_due; neither counts "
                       "in the share.",
    "open_backlog": "Tickets open or assigned right now, whatever the dates asked for.",
    "overdue_now": "Open or assigned tickets without a first agent reply whose first-reply due time has passed.",
}

ANSWER_TYPES = values(ANSWER_KINDS)
FALLBACK_TYPES = values(FALLBACK_KINDS)
CSAT_GROUPS = ("bot_only", "agent")
# A ticket's first reply against the SLA, as counted per priority (see DEFINITIONS["first_reply_sla"]);
# "due" is within_sla + late + unanswered.
SLA_OUTCOMES = ("within_sla", "late", "unanswered", "not_yet_due", "closed_before_due")
SLA_COUNTS = ("due",) + SLA_OUTCOMES


def _day(column: Any, dialect: str) -> ColumnElement:
    """The UTC calendar date of a stored time (SQLite keeps UTC text; PostgreSQL a timestamptz)."""
    if dialect == "sqlite":
        return func.date(column)
    return cast(func.timezone(literal_column("'UTC'"), column), Date)


def _day_key(value: Any) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)


def _ratio(part: int, whole: int) -> Optional[float]:
    return round(part / whole, 4) if whole else None


def _sla_counts() -> Dict[str, int]:
    """One priority's first-reply counts (tickets), all zero: ``due`` and each of SLA_OUTCOMES."""
    return {name: 0 for name in SLA_COUNTS}


def _empty_period() -> Dict[str, Any]:
    return {
        "conversations": 0,
        "contained": 0,
        "bot_answers": 0,
        "fallbacks": 0,
        "tickets": 0,
        "tickets_by_reason": {},
        "tickets_by_plan": {},
        "articles": {},
        "csat": {group: {str(stars): 0 for stars in range(1, 6)} for group in CSAT_GROUPS},
        "first_reply_sla": {priority: _sla_counts() for priority in TICKET_PRIORITIES},
    }


def _article(period: Dict[str, Any], article_id: str) -> Dict[str, int]:
    return period["articles"].setdefault(article_id, {"answers": 0, "helpful": 0, "not_helpful": 0})


def _add(target: Dict[str, Any], source: Dict[str, Any]) -> None:
    for key in ("conversations", "contained", "bot_answers", "fallbacks", "tickets"):
        target[key] += source[key]
    for key in ("tickets_by_reason", "tickets_by_plan"):
        for name, count in source[key].items():
            target[key][name] = target[key].get(name, 0) + count
    for article_id, counts in source["articles"].items():
        mine = _article(target, article_id)
        for name, count in counts.items():
            mine[name] += count
    for group, distribution in source["csat"].items():
        for stars, count in distribution.items():
            target["csat"][group][stars] += count
    for priority, counts in source["first_reply_sla"].items():
        mine = target["first_reply_sla"].setdefault(priority, _sla_counts())
        for name, count in counts.items():
            mine[name] += count


def _finish(period: Dict[str, Any]) -> Dict[str, Any]:
    """Ratios from the counts; articles as a list, worst helpful ratio first."""
    period["containment"] = _ratio(period["contained"], period["conversations"])
    period["fallback_rate"] = _ratio(period["fallbacks"], period["bot_answers"])
    articles = []
    for article_id, counts in period["articles"].items():
        verdicts = counts["helpful"] + counts["not_helpful"]
        articles.append({"article_id": article_id, **counts, "helpful_ratio": _ratio(counts["helpful"], verdicts)})
    articles.sort(key=lambda a: (a["helpful_ratio"] is None, a["helpful_ratio"] or 0.0,
                                 -a["not_helpful"], -a["answers"], a["article_id"]))
    period["articles"] = articles
    csat = {}
    for group, distribution in period["csat"].items():
        count = sum(distribution.values())
        total = sum(int(stars) * n for stars, n in distribution.items())
        csat[group] = {"count": count, "average": round(total / count, 2) if count else None,
                       "distribution": distribution}
    period["csat"] = csat
    for counts in period["first_reply_sla"].values():
        counts["share"] = _ratio(counts["within_sla"], counts["due"])
    period["tickets_by_reason"] = dict(sorted(period["tickets_by_reason"].items()))
    period["tickets_by_plan"] = dict(sorted(period["tickets_by_plan"].items()))
    return period


def _conversations(start: Optional[datetime], end: Optional[datetime]) -> CTE:
    """Per conversation with a visitor message whose first message is in [start, end): its id and first_at.

    Messages before ``start`` cannot belong to such a conversation (its first message is not earlier),
    so only messages from ``start`` on are read (an index range on created_at); a conversation that
    began before ``start`` and went on inside it is recognised by a message before ``start`` (an
    index seek per conversation) and left out, as it would be by the minimum over all its messages.
    No upper bound on the messages read: a conversation that began before ``end`` counts whole.
    """
    first_at = func.min(Message.created_at)
    conditions = [func.sum(case((Message.sender == Sender.VISITOR.value, 1), else_=0)) > 0]
    query = select(Message.conversation_id.label("conversation_id"), first_at.label("first_at"))
    if start is not None:
        earlier = aliased(Message, name="earlier")
        query = query.where(Message.created_at >= start)
        conditions.append(~exists().where(earlier.conversation_id == Message.conversation_id,
                                          earlier.created_at < start))
    if end is not None:
        conditions.append(first_at < end)
    # A CTE: the per-day counts and the replies read it in one statement, so the messages are
    # grouped per conversation once (both backends materialise a CTE used twice).
    return query.group_by(Message.conversation_id).having(and_(*conditions)).cte("conversation")


def _replies_query(conversation: Any, dialect: str, start: Optional[datetime]) -> Select:
    """Bot replies to a visitor question (article, suggestions, rephrase) per day of their conversation,
    kind and (for articles) article id: one pass over the messages for answers, fallbacks and articles.

    The replies are counted per conversation first, so that the join with the conversations and the
    sort by day carry a few short rows per conversation, not every message.
    """
    kind = Message.kind  # payload.metadata.deskmate.type, stored as a column (migration 0005)
    article_id = case((kind == MessageKind.ARTICLE.value, Message.article_id))
    replies = (
        select(Message.conversation_id.label("conversation_id"), kind.label("kind"),
               article_id.label("article_id"), func.count().label("n"))
        .where(Message.sender == Sender.BOT.value, kind.in_(ANSWER_TYPES))
    )
    if start is not None:
        # Every message of a conversation that began at or after start is at or after start too.
        replies = replies.where(Message.created_at >= start)
    # Read from ix_messages_kind_created_at alone (kind, created_at, sender, conversation_id,
    # article_id; migration 0005): an index range per kind, no table rows and no JSON.
    replies = replies.group_by(kind, article_id, Message.conversation_id).subquery("replies")
    day = _day(conversation.c.first_at, dialect)
    return (
        select(day.label("day"), replies.c.kind, replies.c.article_id, func.sum(replies.c.n).label("n"))
        .select_from(replies)
        .join(conversation, conversation.c.conversation_id == replies.c.conversation_id)
        .group_by(day, replies.c.kind, replies.c.article_id)
    )


def _sla_outcome(now: datetime) -> ColumnElement:
    """Each ticket's first reply against its due time as of ``now``: one of SLA_OUTCOMES (SQL CASE, first match).

    An outage's ticket (reason bot_unavailable) closed without an agent reply at or before the due
    time: the bot took the conversation back and answered, no person's reply was owed
    (closed_before_due), whenever it is asked. Any other ticket closed without a reply is owed one: an
    agent resolving or handing back unanswered tickets before their due time must not keep misses out. Otherwise a due time not yet passed is not_yet_due,
    replied or not: counting early replies at once, while the unanswered tickets beside them wait
    for their due time, would flatter the share. Past its due time a ticket is within_sla (first replied at or
    before it), late (replied after it, by ``now``) or unanswered (no reply by ``now``, whether still
    open or closed after the due time without one).
    """
    reply, due = Ticket.first_agent_reply_at, Ticket.sla_due_at
    return case(
        (and_(Ticket.reason == TicketReason.BOT_UNAVAILABLE.value, reply.is_(None), Ticket.resolved_at.is_not(None),
              Ticket.resolved_at <= due, Ticket.resolved_at <= now), "closed_before_due"),
        (due >= now, "not_yet_due"),
        (reply <= due, "within_sla"),
        (reply <= now, "late"),
        else_="unanswered",
    )


def build_report(store: Store, since: Optional[date] = None, until: Optional[date] = None,
                 now: Optional[datetime] = None) -> Dict[str, Any]:
    """Every figure per UTC day from ``since`` to ``until`` (inclusive; None: no bound) and in total.

    Raises ValueError when since is after until or now is naive, StoreUnavailableError when the
    database cannot be read.
    """
    if since and until and since > until:
        raise ValueError(f"--since {since} is after --until {until}")
    now = now or datetime.now(timezone.utc)
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    start, end = period_bounds(since, until)
    days: Dict[str, Dict[str, Any]] = {}

    def period(day: Any) -> Dict[str, Any]:
        return days.setdefault(_day_key(day), _empty_period())

    with store_errors("compute the report"), store.session() as session:
        dialect = session.get_bind().dialect.name
        if dialect == "postgresql" and (session.get_bind().dialect.server_version_info or (0,)) >= (11,):
            # The estimates of these aggregates over a million messages make PostgreSQL JIT-compile
            # them: 1-1.4 s of compiling for ~1.5 s of work (bench/README.md). Only this transaction.
            session.execute(text("SET LOCAL jit = off"))
        conversation = _conversations(start, end)
        has_ticket = exists().where(Ticket.conversation_id == conversation.c.conversation_id)
        day = _day(conversation.c.first_at, dialect)
        # Conversations and contained ones per day (kind NULL), then the bot replies (answers,
        # fallbacks, articles) on the day of their conversation's first message (kind not NULL).
        per_day = select(
            day.label("day"), null().label("kind"), null().label("article_id"), func.count().label("n"),
            func.sum(case((~has_ticket, 1), else_=0)).label("contained"),
        ).group_by(day)
        replies = _replies_query(conversation, dialect, start).add_columns(null().label("contained"))
        for row in session.execute(union_all(per_day, replies)):
            p = period(row.day)
            n = int(row.n)
            if row.kind is None:
                p["conversations"] = n
                p["contained"] = int(row.contained or 0)
                continue
            p["bot_answers"] += n
            if row.kind in FALLBACK_TYPES:
                p["fallbacks"] += n
            if row.kind == MessageKind.ARTICLE.value:
                _article(p, row.article_id or "(none)")["answers"] += n

        # Helpful / not helpful, on the day the verdict was given.
        day = _day(Feedback.created_at, dialect)
        verdicts = (
            select(day.label("day"), Feedback.article_id, Feedback.helpful, func.count().label("n"))
            .where(Feedback.helpful.is_not(None), *in_period(Feedback.created_at, start, end))
            .group_by(day, Feedback.article_id, Feedback.helpful)
        )
        for row in session.execute(verdicts):
            counts = _article(period(row.day), row.article_id or "(none)")
            counts["helpful" if row.helpful else "not_helpful"] += int(row.n)

        # CSAT, split by whether the conversation has a ticket.
        agent = exists().where(Ticket.conversation_id == Feedback.conversation_id)
        group = case((agent, "agent"), else_="bot_only")
        ratings = (
            select(day.label("day"), group.label("grp"), Feedback.csat, func.count().label("n"))
            .where(Feedback.csat.is_not(None), *in_period(Feedback.created_at, start, end))
            .group_by(day, group, Feedback.csat)
        )
        for row in session.execute(ratings):
            period(row.day)["csat"][row.grp][str(int(row.csat))] += int(row.n)

        # Tickets by reason and plan, and first replies against the SLA, on the day they were opened.
        day = _day(Ticket.created_at, dialect)
        in_range = in_period(Ticket.created_at, start, end)
        for column, key in ((Ticket.reason, "tickets_by_reason"), (Ticket.plan, "tickets_by_plan")):
            query = select(day.label("day"), column.label("name"), func.count().label("n")).where(*in_range)
            for row in session.execute(query.group_by(day, column)):
                p = period(row.day)
                p[key][row.name] = int(row.n)
                if key == "tickets_by_reason":
                    p["tickets"] += int(row.n)
        outcome = _sla_outcome(now).label("outcome")
        sla = (
            select(day.label("day"), Ticket.priority, outcome, func.count().label("n"))
            .where(*in_range)
            .group_by(day, Ticket.priority, outcome)
        )
        for row in session.execute(sla):
            counts = period(row.day)["first_reply_sla"].setdefault(row.priority, _sla_counts())
            counts[row.outcome] += int(row.n)
            if row.outcome in ("within_sla", "late", "unanswered"):
                counts["due"] += int(row.n)

        # Right now, whatever the dates.
        waiting = Ticket.status.in_(values([TicketStatus.OPEN, TicketStatus.ASSIGNED]))
        backlog, overdue = session.execute(
            select(
                func.count(),
                func.sum(case((and_(Ticket.first_agent_reply_at.is_(None), Ticket.sla_due_at < now), 1), else_=0)),
            ).where(waiting)
        ).one()

    total = _empty_period()
    for p in days.values():
        _add(total, p)
    return {
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "generated_at": now.astimezone(timezone.utc).isoformat(),
        "definitions": dict(DEFINITIONS),
        "days": [{"date": key, **_finish(days[key])} for key in sorted(days)],
        "total": _finish(total),
        "now": {"open_backlog": int(backlog or 0), "overdue_now": int(overdue or 0)},
    }



def report_with_requests(store: Store, since: Optional[date] = None, until: Optional[date] = None,
                         now: Optional[datetime] = None) -> Dict[str, Any]:
    """``build_report`` plus ``needs_new_article``: the questions leads marked so in the period
    (text, who, when), as `python -m bot report` and the console's downloads give it."""
    from bot.store.inbox import new_article_requests

    report = build_report(store, since, until, now)
    report["needs_new_article"] = [
        {"text": d.text, "decided_by": d.decided_by, "decided_at": d.decided_at.isoformat()}
        for d in new_article_requests(store, since, until)
    ]
    return report
