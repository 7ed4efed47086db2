"""The visitor messages the bot missed, found by the database: the leads' "what the knowledge base lacks".

Five sources, each one SQL query over the store, joined into one statement:

- ``low_confidence``: the bot's reply (the next message in the conversation)
  offered suggestions or asked to rephrase (guesses: the articles it suggested),
  or the bot, unsure twice in a row, handed over (the message before that ticket);
- ``not_helpful``: the visitor said an article did not help; the miss is the
  visitor's last typed message before that article's (latest) answer in the
  conversation (guess: the article);
- ``handoff``: the first typed message of a conversation that then got a ticket
  (not when the ticket only opened because the bot was down: it never saw the
  message). A ticket the bot opened as designed (the visitor asked for a
  person, or a premium visitor's problem was answered and passed on by
  policy) names no gap in the knowledge base when that first message is the
  one that opened it, when the bot answered it with an article the visitor
  did not mark "not helpful", or when the bot's last answer before the ticket
  was such an article (the visitor had the right answer and wanted a person
  all the same). A wrong answer there is found by the visitor's "No" and by
  the spot-checks (``review``); an unsure bot by ``low_confidence``.

- ``review``: a lead spot-checked the bot's confident answer to it and marked
  it wrong (bot/store/reviews.py); the article is never proposed for it.

- ``refused``: the bot's reply (the next message) refused it as outside what
  the bot covers (``out_of_scope``, ``other_product``). Most are right to be
  refused; one that is really about the service would otherwise be seen by
  nobody (no fallback, no ticket, no verdict). The console shows these apart
  (bot.lead.grouping): they are no topic the knowledge base lacks until a lead
  says so.

Button presses are stored as the button's payload ("/faq{...}", "/request_human")
and are not the visitor's words: they never count. Nor do messages a lead already
decided (bot/store/inbox.py). Only the newest ``limit`` messages reach Python.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Dict, List, Optional, Tuple

from sqlalchemy import Integer, String, cast, exists, false, func, literal, null, select, union_all
from sqlalchemy.orm import aliased
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.selectable import Select

from bot.protocol import ANSWER_KINDS, FALLBACK_KINDS, REFUSAL_KINDS, MessageKind, Sender, TicketReason, values
from bot.store.database import Store, store_errors
from bot.store.models import Feedback, InboxDecision, Message, Ticket
from bot.store.period import Moment, in_period, period_bounds
from bot.store.reviews import wrong_answer_reviews

REFUSED_SOURCE = "refused"
MISS_SOURCES = ("low_confidence", "not_helpful", "handoff", "review", REFUSED_SOURCE)
FALLBACK_TYPES = values(FALLBACK_KINDS)
# Replies refusing the message as outside what the bot covers: the ``refused`` source.
REFUSAL_TYPES = values(REFUSAL_KINDS)
# Tickets that say nothing of the knowledge base: the bot never saw the message.
IGNORED_TICKET_REASONS = values([TicketReason.BOT_UNAVAILABLE])
# Handed over as designed when the message that opened the ticket is the first:
# the visitor asked for a person, or (premium) the bot answered a problem article
# and the support policy passed the conversation on.
DESIGNED_TICKET_REASONS = values([TicketReason.REQUESTED, TicketReason.PROBLEM])
# Bot replies to a visitor's question: an article, or a fallback (suggestions, rephrase).
ANSWER_TYPES = values(ANSWER_KINDS)
# The bot was unsure twice in a row and handed over (bot.handoff.service).
UNSURE_TICKET_REASON = TicketReason.LOW_CONFIDENCE.value
# The gateway stores a pressed button as its payload, which always starts with "/".
BUTTON_PREFIX = "/"


@dataclass(frozen=True)
class Miss:
    """A visitor message the bot missed.

    ``guesses``: the article ids the bot offered (suggestions) for it;
    ``rejected``: the articles the bot answered it with that the visitor
    marked "not helpful" (never a phrasing to add them to).
    """

    message_id: int
    conversation_id: str
    text: str
    created_at: datetime
    sources: Tuple[str, ...]
    guesses: Tuple[str, ...]
    rejected: Tuple[str, ...] = ()

    @property
    def refused(self) -> bool:
        """Whether the bot refused it as outside what it covers (source ``refused``)."""
        return REFUSED_SOURCE in self.sources


def _deskmate(message: Any, key: str) -> ColumnElement:
    """``payload.metadata.deskmate.<key>`` of a message, as JSON (portable: SQLite and PostgreSQL)."""
    return message.payload[("metadata", "deskmate", key)]


def _typed(message: Any) -> List[ColumnElement]:
    """A visitor's own words: not a button press, not blank."""
    return [
        message.sender == Sender.VISITOR.value,
        ~message.text.startswith(BUTTON_PREFIX),
        func.length(func.trim(message.text)) > 0,
    ]


def _replied_with(kinds: Tuple[str, ...], source: str, start: Optional[datetime]) -> Select:
    """The messages the bot replied to with a message of one of ``kinds``, as ``source``."""
    bot, earlier = aliased(Message), aliased(Message)
    # From each such reply to the message just before it: the visitor's
    # message it answered (the gateway stores a turn's replies right after it).
    # Driven by the replies, by the (conversation_id, id) index: a join ON a
    # correlated subquery had both planners compare every pair of messages.
    previous_id = (
        select(func.max(earlier.id))
        .where(earlier.conversation_id == bot.conversation_id, earlier.id < bot.id)
        .correlate(bot)
        .scalar_subquery()
    )
    return (
        select(
            previous_id.label("message_id"), literal(source, String).label("source"),
            bot.id.label("bot_message_id"), cast(null(), String).label("article_id"),
        )
        # ``kind`` is the stored reply type (indexed with created_at): no JSON parsing.
        # A reply comes after its message: older replies cannot answer one in the period.
        .where(bot.kind.in_(kinds), bot.sender == Sender.BOT.value, *in_period(bot.created_at, start, None))
    )


def _low_confidence(start: Optional[datetime]) -> Select:
    return _replied_with(FALLBACK_TYPES, "low_confidence", start)


def _refused(start: Optional[datetime]) -> Select:
    # The refusal offers no articles: its payload has no ``article_ids``, so the message gets no guesses.
    return _replied_with(REFUSAL_TYPES, REFUSED_SOURCE, start)


def _not_helpful(start: Optional[datetime]) -> Select:
    bot, earlier = aliased(Message), aliased(Message)
    # Per verdict (few rows), by the (conversation_id, id) index: the article's
    # latest answer in the conversation, then the typed message before it. A
    # join from feedback to messages let SQLite scan every message instead.
    answer_id = (
        select(func.max(bot.id))
        .where(
            bot.conversation_id == Feedback.conversation_id,
            bot.sender == Sender.BOT.value,
            bot.kind == MessageKind.ARTICLE.value,
            bot.article_id == Feedback.article_id,
        )
        .correlate(Feedback)
        .scalar_subquery()
    )
    asked_id = (
        select(func.max(earlier.id))
        .where(earlier.conversation_id == Feedback.conversation_id, earlier.id < answer_id, *_typed(earlier))
        .correlate(Feedback)
        .scalar_subquery()
    )
    return (
        select(
            asked_id.label("message_id"), literal("not_helpful", String).label("source"),
            cast(null(), Integer).label("bot_message_id"), Feedback.article_id.label("article_id"),
        )
        # A verdict comes after the message it judges: older verdicts cannot be about one in the period.
        .where(Feedback.helpful == false(), *in_period(Feedback.created_at, start, None))
    )


def _kept_article(answer_id: ColumnElement) -> ColumnElement:
    """Whether message ``answer_id`` is an article answer the visitor did not mark "not helpful"."""
    answer = aliased(Message)
    # The conversation's "No"s, found by the conversation's index: with the article beside it in one
    # EXISTS, SQLite (no statistics) walked every verdict of that article instead, 50 times slower.
    marked_no = answer.article_id.in_(
        select(Feedback.article_id).where(Feedback.conversation_id == answer.conversation_id, Feedback.helpful == false())
    )
    return exists().where(answer.id == answer_id, answer.kind == MessageKind.ARTICLE.value, ~marked_no)


def _handoff(start: Optional[datetime]) -> Select:
    first, last, reply, answered = (aliased(Message) for _ in range(4))
    first_typed_id = (
        select(func.min(first.id))
        .where(first.conversation_id == Ticket.conversation_id, first.created_at <= Ticket.created_at, *_typed(first))
        .correlate(Ticket)
        .scalar_subquery()
    )
    # The typed message that opened the ticket (the last one before it).
    opening_id = (
        select(func.max(last.id))
        .where(last.conversation_id == Ticket.conversation_id, last.created_at <= Ticket.created_at, *_typed(last))
        .correlate(Ticket)
        .scalar_subquery()
    )
    # The bot's answer to the first typed message: the first message after it that is the visitor's or a
    # bot answer (an article, a fallback). One index range from the first message on; a visitor message
    # first means the bot never answered it (and is no article).
    first_reply_id = (
        select(func.min(reply.id))
        .where(reply.conversation_id == Ticket.conversation_id, reply.id > first_typed_id,
               (reply.sender == Sender.VISITOR.value) | ((reply.sender == Sender.BOT.value) & reply.kind.in_(ANSWER_TYPES)))
        .correlate(Ticket)
        .scalar_subquery()
    )
    # The bot's last answer before the ticket: what the visitor had when they asked for a person.
    last_answer_id = (
        select(func.max(answered.id))
        .where(answered.conversation_id == Ticket.conversation_id, answered.sender == Sender.BOT.value,
               answered.kind.in_(ANSWER_TYPES), answered.created_at <= Ticket.created_at)
        .correlate(Ticket)
        .scalar_subquery()
    )
    as_designed = Ticket.reason.in_(DESIGNED_TICKET_REASONS) & (
        (first_typed_id == opening_id) | _kept_article(first_reply_id) | _kept_article(last_answer_id)
    )
    return (
        select(
            first_typed_id.label("message_id"), literal("handoff", String).label("source"),
            cast(null(), Integer).label("bot_message_id"), cast(null(), String).label("article_id"),
        )
        # A ticket opens after the message it follows: older tickets cannot be about one in the period.
        .where(Ticket.reason.not_in(IGNORED_TICKET_REASONS), *in_period(Ticket.created_at, start, None), ~as_designed)
    )


def _unsure_handoff(start: Optional[datetime]) -> Select:
    last = aliased(Message)
    # "Bot unsure twice": the second unsure message gets the handoff, not
    # suggestions, so the fallback source never sees it; it is the last typed
    # message before the ticket.
    last_typed_id = (
        select(func.max(last.id))
        .where(last.conversation_id == Ticket.conversation_id, last.created_at <= Ticket.created_at, *_typed(last))
        .correlate(Ticket)
        .scalar_subquery()
    )
    return (
        select(
            last_typed_id.label("message_id"), literal("low_confidence", String).label("source"),
            cast(null(), Integer).label("bot_message_id"), cast(null(), String).label("article_id"),
        )
        .where(Ticket.reason == UNSURE_TICKET_REASON, *in_period(Ticket.created_at, start, None))
    )


def _reviewed_wrong(start: Optional[datetime]) -> Select:
    reviews = wrong_answer_reviews(start).subquery()
    return select(
        reviews.c.question_message_id.label("message_id"), literal("review", String).label("source"),
        cast(null(), Integer).label("bot_message_id"), reviews.c.article_id.label("article_id"),
    )


def collect_misses(
    store: Store, since: Optional[Moment] = None, until: Optional[Moment] = None, limit: int = 5000
) -> List[Miss]:
    """The newest ``limit`` undecided missed messages sent in the period, newest first, each once.

    ``since`` / ``until``: dates are whole UTC days (``until`` included),
    datetimes exact moments (``until`` excluded). Raises ValueError for a
    bad period or limit, StoreUnavailableError when the database cannot be read.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    start, end = period_bounds(since, until)
    # Each source names message ids; whether they are typed visitor messages of
    # the period is checked once, on those ids only (primary-key lookups: a
    # join per source made the planners hash every message of the period).
    hits = union_all(
        _low_confidence(start), _unsure_handoff(start), _not_helpful(start), _handoff(start), _reviewed_wrong(start),
        _refused(start),
    ).cte("hits")
    decided = exists().where(InboxDecision.message_id == Message.id)
    chosen = (
        select(Message.id, Message.conversation_id, Message.text, Message.created_at)
        .where(Message.id.in_(select(hits.c.message_id)), *_typed(Message), *in_period(Message.created_at, start, end), ~decided)
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(limit)
        .cte("chosen")
    )
    bot = aliased(Message)
    query = (
        select(chosen, hits.c.source, hits.c.article_id, _deskmate(bot, "article_ids").label("article_ids"))
        .join(hits, hits.c.message_id == chosen.c.id)
        .outerjoin(bot, bot.id == hits.c.bot_message_id)
    )
    misses: Dict[int, Dict[str, Any]] = {}
    with store_errors("collect the missed messages"), store.session() as session:
        for row in session.execute(query):
            miss = misses.setdefault(row.id, {
                "message_id": row.id, "conversation_id": row.conversation_id, "text": row.text,
                "created_at": row.created_at, "sources": set(), "guesses": [], "rejected": [],
            })
            miss["sources"].add(row.source)
            if row.article_id:  # answered, and the visitor (or a lead's review) said it was not right
                if row.article_id not in miss["rejected"]:
                    miss["rejected"].append(row.article_id)
                continue
            offered = [str(a) for a in row.article_ids or [] if a]
            miss["guesses"].extend(a for a in offered if a not in miss["guesses"])
    ordered = sorted(misses.values(), key=lambda m: (m["created_at"], m["message_id"]), reverse=True)
    return [
        Miss(**{
            **m, "sources": tuple(s for s in MISS_SOURCES if s in m["sources"]),
            "guesses": tuple(a for a in m["guesses"] if a not in m["rejected"]), "rejected": tuple(m["rejected"]),
        })
        for m in ordered
    ]
