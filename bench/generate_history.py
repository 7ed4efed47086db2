"""A large, realistic synthetic history for the report benchmarks (issue 5: 100,000 conversations, 1,000,000 messages).

Migrates the database, seeds the demo customers (ticket plans point at
them), then writes conversations spread over ``--days`` days ending now:
visitor questions, bot answers with the payloads the real bot stores
(``{"quick_replies": [...], "metadata": {"deskmate": {"type": ...}}}``:
article answers with ids from kb/, suggestions, rephrase, handoff,
agent_joined, agent_message, resolved, rating_request, rating_recorded),
about 20 % of conversations with a ticket (reasons, plans and priorities as
the real code uses them, first-reply due times from kb/support_policy.yml,
first agent replies around that due time, some still open, a few overdue),
helpful / not-helpful verdicts and CSAT ratings. The message total is exact.

Rows go in with SQLAlchemy Core executemany in large batches (COPY for the
messages on PostgreSQL), one day of conversations at a time, in time order
(message ids grow with time as in production). The database must be empty
(no messages yet): use a new SQLite file or a new PostgreSQL database.
PostgreSQL is ANALYZEd at the end (what autovacuum does after a bulk load);
SQLite is not (a deployment never runs ANALYZE). Usage:

    .venv/bin/python bench/generate_history.py --database-url sqlite:///var/bench/history.db
    createdb -h 127.0.0.1 deskmate_bench
    .venv/bin/python bench/generate_history.py --database-url postgresql://root@127.0.0.1:5432/deskmate_bench
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select, text  # noqa: E402
from tqdm import tqdm  # noqa: E402

from bot.handoff.policy import SupportPolicy  # noqa: E402
from bot.kb.articles import load_articles  # noqa: E402
from bot.settings import get_settings  # noqa: E402
from bot.store.customers import all_customers  # noqa: E402
from bot.store.database import Store, make_engine, migrate  # noqa: E402
from bot.store.messages import payload_columns  # noqa: E402
from bot.store.models import Feedback, Message, Ticket, TicketEvent  # noqa: E402
from bot.store.seed import seed_demo_customers  # noqa: E402

BATCH = 20_000
AGENTS = [("maria@lumio.example", "Maria"), ("tom@lumio.example", "Tom"), ("ines@lumio.example", "Ines"),
          ("kofi@lumio.example", "Kofi"), ("li@lumio.example", "Li")]
PLANS = (("anonymous", 0.45), ("free", 0.25), ("standard", 0.2), ("premium", 0.1))
REASONS = (("requested", 0.4), ("low_confidence", 0.25), ("not_helpful", 0.2), ("bot_unavailable", 0.03))
TURNS = (("article", 0.65), ("suggestions", 0.2), ("rephrase", 0.15))
STARS = ((5, 0.42), (4, 0.25), (3, 0.12), (2, 0.08), (1, 0.13))
# Conversations per hour of the UTC day (relative): quiet nights, busy afternoons.
HOURLY = [2, 1, 1, 1, 1, 2, 3, 5, 7, 9, 10, 10, 10, 10, 10, 10, 9, 9, 8, 8, 7, 6, 4, 3]
QUESTIONS = ["how do I get a refund", "i was charged twice this month", "the app keeps crashing on my tv",
             "can't log in", "how do i cancel", "what plans do you have", "my video keeps buffering",
             "where is my invoice", "how to download episodes", "someone hacked my account", "asdf",
             "i want to talk to someone", "subtitles are out of sync", "is there a student discount"]


def pick(rng: random.Random, weighted: Tuple[Tuple[Any, float], ...]) -> Any:
    return rng.choices([v for v, _ in weighted], [w for _, w in weighted])[0]


def deskmate(kind: str, quick_replies: Optional[List[Dict[str, str]]] = None, **extra: Any) -> Dict[str, Any]:
    """A bot message payload exactly as the gateway stores it (relay.widget_messages)."""
    return {"quick_replies": quick_replies or [], "metadata": {"deskmate": {"type": kind, **extra}}}


def button(title: str, payload: str) -> Dict[str, str]:
    return {"content_type": "text", "title": title, "payload": payload}


TALK_TO_PERSON = button("Talk to a person", "/request_human")


@dataclass
class Totals:
    conversations: int = 0
    messages: int = 0
    tickets: int = 0
    feedback: int = 0
    ratings: int = 0
    open_tickets: int = 0
    overdue: int = 0
    kinds: Counter = field(default_factory=Counter)


class Generator:
    def __init__(self, args: argparse.Namespace, now: datetime) -> None:
        settings = get_settings()
        self.rng = random.Random(args.seed)
        self.now = now
        self.start = now - timedelta(days=args.days)
        self.policy = SupportPolicy.load(settings.support_policy_file)
        self.articles = load_articles(settings.kb_dir)
        # Popularity of articles: a few answer most questions (Zipf-like); each has its own helpfulness.
        self.rng.shuffle(self.articles)
        self.article_weights = [1 / (rank + 1) ** 0.9 for rank in range(len(self.articles))]
        self.helpfulness = {a.id: self.rng.uniform(0.45, 0.92) for a in self.articles}
        self.customers: Dict[str, List[Tuple[int, str, str]]] = {}
        self.totals = Totals()
        self.next_ticket_id = 1

    # -- plan of the whole history ---------------------------------------------------------------

    def budgets(self, conversations: int, messages: int) -> List[Tuple[str, int]]:
        """(kind, message count) per conversation, summing to exactly ``messages``.

        kind: "widget" (opened the widget, never wrote: the greeting only), "bot" (the bot alone)
        or "ticket" (handed to a person).
        """
        rng = self.rng
        kinds = []
        for _ in range(conversations):
            roll = rng.random()
            kinds.append("widget" if roll < 0.05 else "ticket" if roll < 0.25 else "bot")
        minimum = {"widget": 1, "bot": 2, "ticket": 8}
        weight = {"widget": 0.0, "bot": 1.0, "ticket": 1.7}
        base = sum(minimum[k] for k in kinds)
        if base > messages:
            raise SystemExit(f"{messages} messages are too few for {conversations} conversations (need {base})")
        weights = [weight[k] * rng.gammavariate(2.0, 0.5) for k in kinds]
        scale = (messages - base) / sum(weights)
        extra = [int(w * scale) for w in weights]
        left = messages - base - sum(extra)
        candidates = [i for i, k in enumerate(kinds) if k != "widget"]
        for i in rng.sample(candidates, left) if left <= len(candidates) else [rng.choice(candidates) for _ in range(left)]:
            extra[i] += 1
        return [(k, minimum[k] + e) for k, e in zip(kinds, extra)]

    def start_time(self) -> datetime:
        """A first-message time in the history's days, busier by day; at least 3 hours before now."""
        latest = self.now - timedelta(hours=3)
        midnight = self.start.replace(hour=0, minute=0, second=0, microsecond=0)
        while True:
            day = self.rng.randrange(0, (self.now - self.start).days + 1)
            hour = self.rng.choices(range(24), HOURLY)[0]
            at = midnight + timedelta(days=day, hours=hour, seconds=self.rng.randrange(3600),
                                      microseconds=self.rng.randrange(10**6))
            if self.start <= at <= latest:
                return at

    # -- one conversation ------------------------------------------------------------------------

    def conversation(self, kind: str, budget: int, at: datetime, out: Dict[str, list]) -> None:
        rng = self.rng
        cid = "%032x" % rng.getrandbits(128)
        msgs = out["messages"]
        self.totals.conversations += 1

        def add(sender: str, body: str, when: datetime, payload: Optional[Dict[str, Any]] = None,
                author: Optional[str] = None) -> None:
            # kind / article_id derived as the store derives them on every write.
            msgs.append({"conversation_id": cid, "sender": sender, "author": author, "text": body,
                         "payload": payload, "created_at": when, **payload_columns(payload)})
            if payload and payload.get("metadata", {}).get("deskmate"):
                self.totals.kinds[payload["metadata"]["deskmate"]["type"]] += 1

        if kind == "widget":
            add("bot", "Hi! I'm Lumio's assistant. How can I help?", at, {"quick_replies": [], "metadata": {}})
            return
        reserve = 0
        if kind == "ticket":
            reserve = max(6, min(budget - 2, 6 + int(rng.expovariate(1 / 4))))
        remaining = budget - reserve
        last_turn, last_verdict, answered = None, None, 0
        while remaining > 0:
            at += timedelta(seconds=rng.randint(8, 90))
            if remaining == 1:
                add("visitor", rng.choice(["thanks", "ok", "great, thank you!"]), at)
                remaining -= 1
                break
            add("visitor", rng.choice(QUESTIONS), at)
            turn = pick(rng, TURNS) if remaining >= 3 else rng.choice(["suggestions", "rephrase"])
            reply_at = at + timedelta(milliseconds=rng.randint(200, 1500))
            last_turn = turn
            if turn == "article":
                article = rng.choices(self.articles, self.article_weights)[0]
                add("bot", article.body, reply_at, deskmate("article", article_id=article.id, title=article.title))
                add("bot", "Was this helpful?", reply_at, {"quick_replies": [
                    button("Yes", f'/feedback_helpful{{"article_id":"{article.id}"}}'),
                    button("No", f'/feedback_not_helpful{{"article_id":"{article.id}"}}')], "metadata": {}})
                remaining -= 3
                answered += 1
                if rng.random() < 0.35:
                    helpful = rng.random() < self.helpfulness[article.id]
                    out["feedback"].append({"conversation_id": cid, "article_id": article.id, "helpful": helpful,
                                            "csat": None, "created_at": reply_at + timedelta(seconds=rng.randint(5, 60))})
                    self.totals.feedback += 1
                    last_verdict = helpful
            else:
                related = rng.sample(self.articles, 3) if turn == "suggestions" else []
                response = "Is it one of these?" if turn == "suggestions" else \
                    "Sorry, I didn't get that. Could you say it in other words?"
                replies = [button(a.title, f'/faq{{"article_id":"{a.id}"}}') for a in related] + [TALK_TO_PERSON]
                add("bot", response, reply_at, deskmate(turn, quick_replies=replies, article_ids=[a.id for a in related]))
                remaining -= 2
            at = reply_at
        if kind == "ticket":
            self.ticket(cid, at, reserve, last_turn, last_verdict, add, out)
        elif answered and rng.random() < 0.08:
            stars = pick(rng, STARS)
            when = at + timedelta(seconds=rng.randint(20, 300))
            out["feedback"].append({"conversation_id": cid, "article_id": None, "helpful": None, "csat": stars,
                                    "created_at": when})
            self.totals.ratings += 1

    def ticket(self, cid: str, at: datetime, budget: int, last_turn: Optional[str], last_verdict: Optional[bool],
               add: Any, out: Dict[str, list]) -> None:
        rng = self.rng
        plan = pick(rng, PLANS)
        rules = self.policy.for_plan(plan)
        priority = rules.priority
        if plan == "premium" and rng.random() < 0.4:
            reason = "premium_problem"
        elif last_verdict is False and rng.random() < 0.7:
            reason = "not_helpful"
        elif last_turn in ("suggestions", "rephrase") and rng.random() < 0.5:
            reason = "low_confidence"
        else:
            reason = pick(rng, REASONS)
        customer_id, customer = None, None
        if plan != "anonymous" and self.customers.get(plan):
            customer_id, email, name = rng.choice(self.customers[plan])
            customer = {"name": name, "email": email, "plan": plan}
        at += timedelta(seconds=rng.randint(8, 60))
        add("visitor", "I want to talk to a person", at)
        opened = at + timedelta(milliseconds=rng.randint(200, 1500))
        due = self.policy.sla_due(plan, opened)
        ticket_id = self.next_ticket_id
        self.next_ticket_id += 1
        add("bot", f"I've passed this to our support team. Your ticket is #{ticket_id}.", opened,
            deskmate("handoff", ticket=ticket_id, priority=priority, status="open", sla_due_at=due.isoformat(),
                     created=True, reply_time=rules.describe_first_reply(),
                     agents_working=self.policy.is_open(plan, opened)))
        budget -= 2
        # The first reply: around the due time (most within it), later than now means not replied yet.
        window = max(due - opened, timedelta(minutes=1))
        factor = math.exp(rng.gauss(math.log(0.45), 0.75))
        reply_at: Optional[datetime] = opened + window * factor + timedelta(seconds=rng.randint(0, 120))
        if rng.random() < 0.01:
            reply_at = None  # forgotten: stays open without a reply (overdue once its due time passes)
        if reply_at is not None and reply_at >= self.now:
            reply_at = None
        agent, agent_name = rng.choice(AGENTS)
        events = [{"ticket_id": ticket_id, "kind": "opened", "actor": "bot", "at": opened,
                   "detail": {"reason": reason, "plan": plan, "priority": priority}}]
        status, resolved_at, assignee = "open", None, None
        if reply_at is None:
            # Waiting: the visitor may write again meanwhile (stored, routed to the agents).
            moments = sorted(opened + (self.now - opened) * rng.random() * 0.9 for _ in range(budget))
            status = "open"
            for when in moments:
                add("visitor", rng.choice(["hello?", "is anyone there", "still waiting"]), when)
            if rng.random() < 0.3 and opened + timedelta(minutes=5) < self.now:
                status, assignee = "assigned", agent
                events.append({"ticket_id": ticket_id, "kind": "assigned", "actor": f"agent:{agent}",
                               "at": opened + timedelta(minutes=5), "detail": {"assignee": agent, "previous": None}})
        else:
            assignee = agent
            joined = max(opened + timedelta(seconds=1), reply_at - timedelta(seconds=rng.randint(5, 120)))
            events.append({"ticket_id": ticket_id, "kind": "assigned", "actor": f"agent:{agent}", "at": joined,
                           "detail": {"assignee": agent, "previous": None}})
            events.append({"ticket_id": ticket_id, "kind": "agent_reply", "actor": f"agent:{agent}", "at": reply_at,
                           "detail": {"first": True}})
            # budget >= 4 here: joined + first reply, then resolved + rating request (+ thanks if rated).
            resolved_at = reply_at + timedelta(minutes=rng.choice([5, 15, 40, 120, 600, 2000]) * rng.random() + 2)
            rating_at = resolved_at + timedelta(seconds=rng.randint(10, 600))
            closing, rated = 0, False
            if resolved_at < self.now:
                closing = 2
                rated = budget >= 5 and rating_at < self.now and rng.random() < 0.45
                closing += 1 if rated else 0
            else:
                resolved_at, status = None, "assigned"
            add("system", f"{agent_name} joined the conversation.", joined,
                deskmate("agent_joined", agent_name=agent_name, ticket=ticket_id))
            add("agent", "Hi, I'm looking into this for you now.", reply_at,
                deskmate("agent_message", agent_name=agent_name, ticket=ticket_id), author=agent)
            chat = budget - 2 - closing
            end = resolved_at or min(self.now, reply_at + timedelta(hours=2))
            moments = sorted(reply_at + (end - reply_at) * rng.random() for _ in range(chat))
            for i, when in enumerate(moments):
                if i % 2 == 0:
                    add("visitor", rng.choice(["thanks, it still does not work", "ok done", "yes that's my email"]), when)
                else:
                    add("agent", "Thanks! I've fixed it on our side, please try again.", when,
                        deskmate("agent_message", agent_name=agent_name, ticket=ticket_id), author=agent)
            if resolved_at is not None:
                status = "resolved"
                how = "resolved" if rng.random() < 0.8 else "handed_back"
                events.append({"ticket_id": ticket_id, "kind": how, "actor": f"agent:{agent}", "at": resolved_at,
                               "detail": None})
                add("system", f"{agent_name} marked your request as resolved.", resolved_at,
                    deskmate("resolved", how=how, ticket=ticket_id))
                add("bot", "How would you rate the help you got?", resolved_at,
                    deskmate("rating_request", ticket=ticket_id))
                if rated:
                    stars = pick(rng, STARS)
                    when = rating_at
                    out["feedback"].append({"conversation_id": cid, "article_id": None, "helpful": None,
                                            "csat": stars, "created_at": when})
                    add("bot", "Thank you for your rating!", when, deskmate("rating_recorded", stars=stars))
                    self.totals.ratings += 1
        handover = {
            "transcript": [{"from": "visitor", "text": "I want to talk to a person", "at": opened.isoformat()}],
            "customer": customer, "reason": reason, "intents": [{"name": "request_human", "confidence": 0.93}],
            "articles": [],
        }
        out["tickets"].append({"id": ticket_id, "conversation_id": cid, "customer_id": customer_id, "plan": plan,
                               "priority": priority, "reason": reason, "status": status, "assignee": assignee,
                               "created_at": opened, "first_agent_reply_at": reply_at, "resolved_at": resolved_at,
                               "sla_due_at": due, "handover": handover})
        out["events"].extend(events)
        self.totals.tickets += 1
        if status != "resolved":
            self.totals.open_tickets += 1
            self.totals.overdue += reply_at is None and due < self.now


def copy_messages(connection: Any, rows: List[Dict[str, Any]]) -> None:
    """PostgreSQL: the messages through COPY (CSV), several times faster than INSERT."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for r in rows:
        writer.writerow((r["conversation_id"], r["sender"], r["author"] if r["author"] is not None else "\\N",
                         r["text"], json.dumps(r["payload"]),  # None: JSON null, as the ORM stores it
                         r["created_at"].isoformat(),
                         r["kind"] if r["kind"] is not None else "\\N",
                         r["article_id"] if r["article_id"] is not None else "\\N"))
    buffer.seek(0)
    cursor = connection.connection.cursor()
    cursor.copy_expert(
        "COPY messages (conversation_id, sender, author, text, payload, created_at, kind, article_id) FROM STDIN "
        "WITH (FORMAT csv, NULL '\\N')", buffer)


def write(engine: Any, out: Dict[str, list], use_copy: bool) -> None:
    out["messages"].sort(key=lambda r: r["created_at"])
    with engine.begin() as connection:
        for start in range(0, len(out["messages"]), BATCH):
            chunk = out["messages"][start:start + BATCH]
            if use_copy:
                copy_messages(connection, chunk)
            else:
                connection.execute(Message.__table__.insert(), chunk)
        for table, key in ((Ticket.__table__, "tickets"), (TicketEvent.__table__, "events"),
                           (Feedback.__table__, "feedback")):
            rows = out[key]
            for start in range(0, len(rows), BATCH):
                connection.execute(table.insert(), rows[start:start + BATCH])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--now", help="end of the history (ISO time, UTC); default: now")
    args = parser.parse_args()
    now = datetime.fromisoformat(args.now) if args.now else datetime.now(timezone.utc)
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    started = time.perf_counter()
    url = args.database_url
    migrate(url)
    engine = make_engine(url)
    dialect = engine.dialect.name
    with engine.connect() as connection:
        existing = connection.execute(select(func.count()).select_from(Message.__table__)).scalar()
    if existing:
        print(f"{url} already has {existing} messages: use a new, empty database", file=sys.stderr)
        return 2
    settings = get_settings()
    store = Store(url)
    seed_demo_customers(store, settings.demo_customers_file, now)
    gen = Generator(args, now)
    for c in all_customers(store):
        gen.customers.setdefault(c.plan, []).append((c.id, c.email, c.name))
    store.dispose()

    plan = gen.budgets(args.conversations, args.messages)
    starts = sorted(((gen.start_time(), kind, budget) for kind, budget in plan), key=lambda x: x[0])
    by_day: Dict[Any, List[Tuple[datetime, str, int]]] = {}
    for item in starts:
        by_day.setdefault(item[0].date(), []).append(item)
    use_copy = dialect == "postgresql"
    with tqdm(total=args.messages, unit="msg", unit_scale=True, desc="writing") as bar:
        for day in sorted(by_day):
            out: Dict[str, list] = {"messages": [], "tickets": [], "events": [], "feedback": []}
            for at, kind, budget in by_day[day]:
                gen.conversation(kind, budget, at, out)
            write(engine, out, use_copy)
            gen.totals.messages += len(out["messages"])
            bar.update(len(out["messages"]))
    with engine.begin() as connection:
        if dialect == "postgresql":
            # Explicit ticket ids: move the sequence past them, as the real inserts would have.
            connection.execute(text("SELECT setval(pg_get_serial_sequence('tickets', 'id'), "
                                    "(SELECT coalesce(max(id), 1) FROM tickets))"))
    if dialect == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE"))
    engine.dispose()
    t = gen.totals
    print(f"{t.conversations} conversations, {t.messages} messages, {t.tickets} tickets "
          f"({t.open_tickets} open or assigned, {t.overdue} overdue), {t.feedback} verdicts, {t.ratings} ratings "
          f"over {args.days} days up to {now.isoformat(timespec='seconds')}")
    print("bot/system payload types: " + ", ".join(f"{k} {n}" for k, n in t.kinds.most_common()))
    print(f"done in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
