"""Tables of Deskmate's store.

The schema itself is created and changed only by the Alembic migrations in
``bot/store/migrations``; these models must describe the same tables.
"""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Optional

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Text,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import declarative_base, relationship
from sqlalchemy.types import TypeDecorator

from bot.protocol import InboxAction, Priority, Sender, TicketStatus, values

# Fixed constraint names, so that migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Any to mypy: SQLAlchemy 1.4 has no type information here.
Base: Any = declarative_base(metadata=MetaData(naming_convention=NAMING_CONVENTION))

CUSTOMER_STATUSES = ("active", "paused", "cancelled")
BILLING_PERIODS = ("monthly", "annual")
TICKET_STATUSES = values(TicketStatus)
TICKET_PRIORITIES = values(Priority)
OPEN_TICKET_WHERE = "status != 'resolved'"
MESSAGE_SENDERS = values(Sender)
# messages.kind and messages.article_id (migration 0005).
MESSAGE_KIND_CHARS = 20
MESSAGE_ARTICLE_ID_CHARS = 100
# messages.client_message_id (migration 0014): bot.protocol.CLIENT_MESSAGE_ID.
CLIENT_MESSAGE_ID_CHARS = 32
STAFF_ROLES = ("agent", "lead")


def utcnow() -> datetime:
    """Now, timezone-aware, in UTC."""
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on every backend.

    SQLite has no time zones: it would silently drop the offset on write and
    hand back naive values. Values are converted to UTC before they are
    written and always come back aware, so they compare with
    ``datetime.now(timezone.utc)`` on SQLite and PostgreSQL alike.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Optional[datetime], dialect: Dialect) -> Optional[datetime]:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: the store keeps timezone-aware times only")
        value = value.astimezone(timezone.utc)
        if dialect.name == "sqlite":
            # One textual form for every row, so SQLite's string comparison orders correctly.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Optional[datetime], dialect: Dialect) -> Optional[datetime]:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class Money(TypeDecorator):
    """An amount with 2 decimals, read back as a Decimal on every backend.

    SQLite has no decimal type and stores it as a float; with 2 decimals and
    at most 10 digits the float round-trips exactly, so the value is rounded
    back to cents here instead of letting SQLAlchemy warn on every query.
    """

    impl = Numeric(10, 2)
    cache_ok = True
    CENT = Decimal("0.01")

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Numeric(10, 2, asdecimal=False))
        return dialect.type_descriptor(Numeric(10, 2))

    def process_bind_param(self, value: Optional[Any], dialect: Dialect) -> Optional[Any]:
        if value is None:
            return None
        amount = Decimal(str(value)).quantize(self.CENT)
        return float(amount) if dialect.name == "sqlite" else amount

    def process_result_value(self, value: Optional[Any], dialect: Dialect) -> Optional[Decimal]:
        if value is None:
            return None
        return Decimal(str(value)).quantize(self.CENT)


def _in(column: str, values: Any) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Feedback(Base):
    """A visitor's verdict on one answer (helpful or not), and later a CSAT score."""

    __tablename__ = "feedback"
    __table_args__ = (
        CheckConstraint("csat BETWEEN 1 AND 5", name="csat_range"),
        Index("uq_feedback_answer_message_id", "answer_message_id", unique=True),
        Index("uq_feedback_ticket_id", "ticket_id", unique=True),
    )

    id = Column(Integer, primary_key=True)
    conversation_id = Column(String(255), nullable=False, index=True)
    article_id = Column(String(100), nullable=True, index=True)
    helpful = Column(Boolean, nullable=True)
    csat = Column(SmallInteger, nullable=True)
    created_at = Column(UTCDateTime(), nullable=False, default=utcnow)
    # The answer a verdict is about, the ticket a rating is about: one row each (migration 0006).
    answer_message_id = Column(Integer, ForeignKey("messages.id", ondelete="CASCADE"), nullable=True)
    ticket_id = Column(Integer, ForeignKey("tickets.id", ondelete="CASCADE"), nullable=True)

    def __repr__(self) -> str:
        return f"Feedback({self.conversation_id!r}, {self.article_id!r}, helpful={self.helpful})"


class Customer(Base):
    """A customer of the tenant's business, with the plan they are on.

    Plan names are the tenant's own (see kb/support_policy.yml), so the
    database does not restrict them.
    """

    __tablename__ = "customers"
    __table_args__ = (
        CheckConstraint("email = lower(email)", name="email_lower_case"),
        CheckConstraint(_in("status", CUSTOMER_STATUSES), name="status_known"),
        CheckConstraint(f"billing_period IS NULL OR {_in('billing_period', BILLING_PERIODS)}", name="billing_period_known"),
        CheckConstraint("price >= 0", name="price_not_negative"),
    )

    id = Column(Integer, primary_key=True)
    email = Column(String(320), nullable=False, unique=True)
    name = Column(String(200), nullable=False)
    plan = Column(String(50), nullable=False)
    billing_period = Column(String(10), nullable=True)
    price = Column(Money(), nullable=False)
    currency = Column(String(3), nullable=False)
    status = Column(String(12), nullable=False)
    renews_at = Column(UTCDateTime(), nullable=True)
    trial_ends_at = Column(UTCDateTime(), nullable=True)
    created_at = Column(UTCDateTime(), nullable=False, default=utcnow)

    def __repr__(self) -> str:
        return f"Customer({self.id}, {self.email!r}, {self.plan!r}, {self.status!r})"


class Ticket(Base):
    """A request for a human agent; its id is the public ticket number (#id)."""

    __tablename__ = "tickets"
    __table_args__ = (
        CheckConstraint(_in("status", TICKET_STATUSES), name="status_known"),
        CheckConstraint(_in("priority", TICKET_PRIORITIES), name="priority_known"),
        # The one-open-ticket-per-conversation rule lives in the database, so
        # that two processes racing to open a ticket cannot both succeed.
        Index(
            "uq_tickets_open_conversation",
            "conversation_id",
            unique=True,
            sqlite_where=text(OPEN_TICKET_WHERE),
            postgresql_where=text(OPEN_TICKET_WHERE),
        ),
        # Public ticket numbers are never reused on SQLite either.
        {"sqlite_autoincrement": True},
    )

    id = Column(Integer, primary_key=True)
    conversation_id = Column(String(255), nullable=False, index=True)
    customer_id = Column(Integer, ForeignKey("customers.id", ondelete="SET NULL"), nullable=True, index=True)
    plan = Column(String(50), nullable=False)
    priority = Column(String(10), nullable=False)
    reason = Column(String(30), nullable=False)
    status = Column(String(10), nullable=False, default="open")
    assignee = Column(String(320), nullable=True)
    created_at = Column(UTCDateTime(), nullable=False)
    first_agent_reply_at = Column(UTCDateTime(), nullable=True)
    resolved_at = Column(UTCDateTime(), nullable=True)
    sla_due_at = Column(UTCDateTime(), nullable=False)
    handover = Column(JSON, nullable=False)
    # When the visitor was told the first-reply due time is about to pass with nobody having replied
    # (once per ticket, whichever gateway saw it first; migration 0011).
    due_notice_at = Column(UTCDateTime(), nullable=True)
    # Where the team's replies go by e-mail when the visitor has left the chat (a signed-in customer's
    # address, or one an anonymous visitor gave); never shown to visitors.
    contact_email = Column(String(320), nullable=True)

    events = relationship("TicketEvent", back_populates="ticket", order_by="TicketEvent.id")

    def __repr__(self) -> str:
        return f"Ticket(#{self.id}, {self.conversation_id!r}, {self.status!r})"


class TicketEvent(Base):
    """One change in a ticket's life: who did what, and when."""

    __tablename__ = "ticket_events"

    id = Column(Integer, primary_key=True)
    ticket_id = Column(Integer, ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False, index=True)
    kind = Column(String(30), nullable=False)
    actor = Column(String(330), nullable=False)
    at = Column(UTCDateTime(), nullable=False)
    detail = Column(JSON, nullable=True)

    ticket = relationship("Ticket", back_populates="events")

    def __repr__(self) -> str:
        return f"TicketEvent(#{self.ticket_id}, {self.kind!r}, {self.actor!r})"


class Message(Base):
    """One message of a conversation as the gateway saw it, stored before it is acted on.

    ``id`` grows with every message in the database (never reused, SQLite
    included) and is the order of a conversation.
    """

    __tablename__ = "messages"
    __table_args__ = (
        CheckConstraint(_in("sender", MESSAGE_SENDERS), name="sender_known"),
        # Serves both "this conversation" and "this conversation, in order, after id N".
        Index("ix_messages_conversation_id_id", "conversation_id", "id"),
        # The report (migration 0004): messages from a date on, and each conversation's first
        # message and visitor presence read from the index alone.
        Index("ix_messages_created_at", "created_at"),
        Index("ix_messages_conversation_id_created_at_sender", "conversation_id", "created_at", "sender"),
        # The report's bot replies by kind from a date on, read from the index alone; only
        # messages with a kind (migration 0005).
        Index(
            "ix_messages_kind_created_at", "kind", "created_at", "sender", "conversation_id", "article_id",
            sqlite_where=text("kind IS NOT NULL"), postgresql_where=text("kind IS NOT NULL"),
        ),
        # A widget sends a message again when its gateway went away before saying it was received
        # (migration 0014): stored once per conversation, whichever gateway got it.
        Index(
            "uq_messages_conversation_id_client_message_id", "conversation_id", "client_message_id", unique=True,
            sqlite_where=text("client_message_id IS NOT NULL"),
            postgresql_where=text("client_message_id IS NOT NULL"),
        ),
        {"sqlite_autoincrement": True},
    )

    id = Column(Integer, primary_key=True)
    conversation_id = Column(String(255), nullable=False)
    sender = Column(String(10), nullable=False)
    author = Column(String(320), nullable=True)
    text = Column(Text(), nullable=False)
    payload = Column(JSON, nullable=True)
    created_at = Column(UTCDateTime(), nullable=False)
    # Copies of payload.metadata.deskmate.type / .article_id (strings, cut to length; else NULL),
    # filled by the store on every write (bot.store.messages.payload_columns) and by migration 0005.
    kind = Column(String(MESSAGE_KIND_CHARS), nullable=True)
    article_id = Column(String(MESSAGE_ARTICLE_ID_CHARS), nullable=True)
    # The widget's own id for a visitor message (32 hex digits), else NULL.
    client_message_id = Column(String(CLIENT_MESSAGE_ID_CHARS), nullable=True)

    def __repr__(self) -> str:
        return f"Message({self.id}, {self.conversation_id!r}, {self.sender!r})"


class ConversationRead(Base):
    """How far the visitor has read a conversation: the newest message an open, visible widget of it
    had when it last said so (``deskmate_seen``). Messages after it are unread (the badge on the chat
    button); message ids grow, so this never needs the clock."""

    __tablename__ = "conversation_reads"

    conversation_id = Column(String(255), primary_key=True)
    seen_message_id = Column(Integer, nullable=False)
    seen_at = Column(UTCDateTime(), nullable=False)


class AgentPresence(Base):
    """One open agent-inbox socket: which staff member, on which gateway, seen when, live until when.

    Each gateway writes its own sockets' rows (on connect, every few seconds, and deletes them on
    disconnect); a row past ``expires_at`` is a gateway that stopped without saying so. Whoever has a
    live row is signed in and available (``bot.store.presence``), read by every gateway and the action
    server alike (migration 0011).
    """

    __tablename__ = "agent_presence"
    __table_args__ = (Index("ix_agent_presence_expires_at", "expires_at"),)

    socket_id = Column(String(100), primary_key=True)  # "<gateway id>:<socket.io sid>"
    gateway_id = Column(String(40), nullable=False, index=True)
    staff_email = Column(String(320), nullable=False)
    connected_at = Column(UTCDateTime(), nullable=False)
    last_seen_at = Column(UTCDateTime(), nullable=False)
    expires_at = Column(UTCDateTime(), nullable=False)


class OnCallAlert(Base):
    """One alert to the on-call people about one ticket in one interval (``slot``: whole
    ``on_call.repeat_every`` intervals since the ticket opened): the unique pair is the claim that makes
    two gateways alert once. ``attempts``, ``next_try_at`` and the lease (``claimed_by`` until
    ``claimed_until``) carry its retries; ``sent_at`` when it went out, ``mailed_at`` when its e-mails
    were handed to the outbound mail and ``posted_at`` when the webhook took it: each once, whatever the
    other's retries. Migration 0011."""

    __tablename__ = "oncall_alerts"
    __table_args__ = (
        Index("uq_oncall_alerts_ticket_id_slot", "ticket_id", "slot", unique=True),
        Index("ix_oncall_alerts_sent_at_next_try_at", "sent_at", "next_try_at"),
    )

    id = Column(Integer, primary_key=True)
    ticket_id = Column(Integer, ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False)
    slot = Column(Integer, nullable=False)
    reason = Column(String(30), nullable=False)
    created_at = Column(UTCDateTime(), nullable=False)
    attempts = Column(Integer, nullable=False, default=0)
    next_try_at = Column(UTCDateTime(), nullable=False)
    claimed_by = Column(String(40), nullable=True)
    claimed_until = Column(UTCDateTime(), nullable=True)
    mailed_at = Column(UTCDateTime(), nullable=True)
    posted_at = Column(UTCDateTime(), nullable=True)  # the webhook answered 2xx (never POSTed again)
    sent_at = Column(UTCDateTime(), nullable=True)
    failed_at = Column(UTCDateTime(), nullable=True)  # retries used up
    last_error = Column(String(300), nullable=True)
MAIL_KINDS = ("conversation", "prepared")
MAIL_STATUSES = ("pending", "sending", "sent", "cancelled", "failed")
PENDING_CONVERSATION_MAIL_WHERE = "status = 'pending' AND kind = 'conversation'"


class OutgoingMail(Base):
    """An e-mail to send, claimed by one gateway at a time (bot/mail/outgoing.py).

    ``conversation``: the team's messages to a ticket's visitor that no widget showed, written when it
    is sent (``covers_message_id``: the newest message it carried); ``prepared``: subject and bodies
    stored as they are (e.g. an on-call alert). A sending row whose ``claimed_until`` has passed (its
    gateway stopped) is claimed again.
    """

    __tablename__ = "outgoing_mail"
    __table_args__ = (
        CheckConstraint(_in("kind", MAIL_KINDS), name="kind_known"),
        CheckConstraint(_in("status", MAIL_STATUSES), name="status_known"),
        Index("ix_outgoing_mail_status_next_attempt_at", "status", "next_attempt_at"),
        # One waiting e-mail per ticket: two gateways scheduling at once cannot make two.
        Index(
            "uq_outgoing_mail_pending_ticket",
            "ticket_id",
            unique=True,
            sqlite_where=text(PENDING_CONVERSATION_MAIL_WHERE),
            postgresql_where=text(PENDING_CONVERSATION_MAIL_WHERE),
        ),
    )

    id = Column(Integer, primary_key=True)
    kind = Column(String(20), nullable=False)
    ticket_id = Column(Integer, ForeignKey("tickets.id", ondelete="CASCADE"), nullable=True, index=True)
    to_address = Column(String(320), nullable=False)
    subject = Column(String(300), nullable=True)
    body_text = Column(Text, nullable=True)
    body_html = Column(Text, nullable=True)
    covers_message_id = Column(Integer, nullable=True)
    status = Column(String(10), nullable=False)
    attempts = Column(Integer, nullable=False, default=0)
    next_attempt_at = Column(UTCDateTime(), nullable=False)
    claimed_until = Column(UTCDateTime(), nullable=True)
    last_error = Column(String(500), nullable=True)
    created_at = Column(UTCDateTime(), nullable=False)
    sent_at = Column(UTCDateTime(), nullable=True)


class ConversationOwner(Base):
    """Who a widget conversation belongs to, fixed by its first message: ``owner`` "anonymous" or
    "customer:<sha256 of the verified token's subject>". A message with another identity is refused,
    so a visitor lured into someone else's conversation (a link) cannot write into it as themselves."""

    __tablename__ = "conversation_owners"

    conversation_id = Column(String(255), primary_key=True)
    owner = Column(String(80), nullable=False)
    since = Column(UTCDateTime(), nullable=False)


class InboundMail(Base):
    """An e-mail reply taken into a conversation, by its Message-ID: a mail server delivering it again
    (after a lost acknowledgement) does not add it twice."""

    __tablename__ = "inbound_mail"

    id = Column(Integer, primary_key=True)
    message_id_header = Column(String(998), nullable=False, unique=True)
    ticket_id = Column(Integer, ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False, index=True)
    message_id = Column(Integer, nullable=True)
    received_at = Column(UTCDateTime(), nullable=False)


class Staff(Base):
    """A person of the support team who signs in to the agent inbox."""

    __tablename__ = "staff"
    __table_args__ = (
        CheckConstraint("email = lower(email)", name="email_lower_case"),
        CheckConstraint(_in("role", STAFF_ROLES), name="role_known"),
    )

    id = Column(Integer, primary_key=True)
    email = Column(String(320), nullable=False, unique=True)
    name = Column(String(200), nullable=False)
    role = Column(String(10), nullable=False)
    password_hash = Column(String(255), nullable=False)
    created_at = Column(UTCDateTime(), nullable=False)
    disabled = Column(Boolean(), nullable=False, default=False, server_default=false())
    # The second factor (migration 0007): a TOTP secret (base32) and one-time recovery codes' SHA-256 hashes.
    totp_secret = Column(String(64), nullable=True)
    recovery_codes = Column(JSON, nullable=True)
    # The TOTP time step of the last code used (migration 0008): a code works once (RFC 6238 section 5.2).
    totp_last_step = Column(BigInteger, nullable=True)

    def __repr__(self) -> str:
        return f"Staff({self.id}, {self.email!r}, {self.role!r}, disabled={self.disabled})"


class StaffSession(Base):
    """A signed-in staff member's session: the cookie holds a random token, ``id`` is its SHA-256."""

    __tablename__ = "staff_sessions"
    __table_args__ = (Index("ix_staff_sessions_staff_id", "staff_id"),)

    id = Column(String(64), primary_key=True)
    staff_id = Column(Integer, ForeignKey("staff.id", ondelete="CASCADE"), nullable=False)
    created_at = Column(UTCDateTime(), nullable=False)
    last_seen_at = Column(UTCDateTime(), nullable=False)
    address = Column(String(64), nullable=True)
    user_agent = Column(String(300), nullable=True)
    ended_at = Column(UTCDateTime(), nullable=True)
    end_reason = Column(String(40), nullable=True)


class SignInFailure(Base):
    """A failed sign-in: the e-mail typed (an account or not) and the client's address."""

    __tablename__ = "sign_in_failures"
    __table_args__ = (
        Index("ix_sign_in_failures_email_at", "email", "at"),
        Index("ix_sign_in_failures_address_at", "address", "at"),
    )

    id = Column(Integer, primary_key=True)
    email = Column(String(320), nullable=False)
    address = Column(String(64), nullable=False)
    at = Column(UTCDateTime(), nullable=False)


class AuditEvent(Base):
    """Who did what to what, when and from where (staff actions, sign-ins, changes)."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_at", "at"),)

    id = Column(Integer, primary_key=True)
    at = Column(UTCDateTime(), nullable=False)
    actor = Column(String(330), nullable=False)
    action = Column(String(40), nullable=False)
    target = Column(String(330), nullable=True)
    address = Column(String(64), nullable=True)
    detail = Column(JSON, nullable=True)


class TeamSetting(Base):
    """A team-wide switch a lead sets (e.g. ``require_totp``)."""

    __tablename__ = "team_settings"

    key = Column(String(40), primary_key=True)
    value = Column(JSON, nullable=True)


INBOX_ACTIONS = values(InboxAction)
RETRAIN_STATUSES = ("running", "loaded", "refused", "failed")


class InboxDecision(Base):
    """What a support lead did with a message the bot missed (one decision per message).

    ``action``: "article" (added as a phrasing of article ``target``), "intent"
    (added as an example of intent ``target``), "new_article" (a topic the
    knowledge base lacks) or "dismiss". ``text`` is the phrasing as written.
    """

    __tablename__ = "inbox_decisions"
    __table_args__ = (CheckConstraint(_in("action", INBOX_ACTIONS), name="action_known"),)

    id = Column(Integer, primary_key=True)
    message_id = Column(Integer, ForeignKey("messages.id", ondelete="CASCADE"), nullable=False, unique=True)
    action = Column(String(20), nullable=False)
    target = Column(String(100), nullable=True)
    text = Column(Text(), nullable=False)
    decided_by = Column(String(320), nullable=False)
    decided_at = Column(UTCDateTime(), nullable=False)

    def __repr__(self) -> str:
        return f"InboxDecision(message {self.message_id}, {self.action!r}, {self.target!r})"


class RetrainJob(Base):
    """A background retraining: train, check, and load the new model only if the checks pass.

    ``stage`` and ``progress`` (0-100) are what the lead page shows while it
    runs; ``detail`` holds the check results and the reason for a refusal.
    At most one job is "running" at a time (a partial unique index).
    """

    __tablename__ = "retrain_jobs"
    __table_args__ = (
        CheckConstraint(_in("status", RETRAIN_STATUSES), name="status_known"),
        Index(
            "ix_retrain_jobs_one_active",
            "status",
            unique=True,
            sqlite_where=text("status = 'running'"),
            postgresql_where=text("status = 'running'"),
        ),
    )

    id = Column(Integer, primary_key=True)
    status = Column(String(10), nullable=False)
    stage = Column(String(40), nullable=False)
    progress = Column(SmallInteger, nullable=False)
    detail = Column(JSON, nullable=True)
    model_path = Column(Text(), nullable=True)
    requested_by = Column(String(320), nullable=False)
    created_at = Column(UTCDateTime(), nullable=False)
    updated_at = Column(UTCDateTime(), nullable=False)
    finished_at = Column(UTCDateTime(), nullable=True)

    def __repr__(self) -> str:
        return f"RetrainJob({self.id}, {self.status!r}, {self.stage!r})"


REVIEW_VERDICTS = ("right", "wrong")


class AnswerReview(Base):
    """A lead's spot-check of an article the bot answered with confidence (one per answer).

    ``answer_message_id``: the bot's article message; ``question_message_id``:
    the visitor's message it answered; ``verdict``: "right" or "wrong" (a wrong
    one joins the leads' missed messages, its article never proposed for it).
    """

    __tablename__ = "answer_reviews"
    __table_args__ = (
        CheckConstraint(_in("verdict", REVIEW_VERDICTS), name="verdict_known"),
        Index("ix_answer_reviews_question_message_id", "question_message_id"),
        Index("ix_answer_reviews_reviewed_at", "reviewed_at"),
    )

    id = Column(Integer, primary_key=True)
    answer_message_id = Column(Integer, ForeignKey("messages.id", ondelete="CASCADE"), nullable=False, unique=True)
    question_message_id = Column(Integer, ForeignKey("messages.id", ondelete="CASCADE"), nullable=False)
    article_id = Column(String(MESSAGE_ARTICLE_ID_CHARS), nullable=False)
    verdict = Column(String(5), nullable=False)
    reviewed_by = Column(String(320), nullable=False)
    reviewed_at = Column(UTCDateTime(), nullable=False)

    def __repr__(self) -> str:
        return f"AnswerReview(answer {self.answer_message_id}, {self.article_id!r}, {self.verdict!r})"


# ---- The agents' working day (issue 14, migration 0012) ----


class AgentTicketRead(Base):
    """How far one agent has read one ticket: the newest message of its conversation the agent had in
    view when their inbox last showed it open. Visitor messages after it are unread for that agent."""

    __tablename__ = "agent_ticket_reads"

    staff_email = Column(String(320), primary_key=True)
    ticket_id = Column(Integer, ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True, index=True)
    seen_message_id = Column(Integer, nullable=False)
    seen_at = Column(UTCDateTime(), nullable=False)


class TicketNote(Base):
    """An internal note on a ticket, for staff only: never a message, so never sent or shown to the
    visitor, never in the widget's history or an e-mail."""

    __tablename__ = "ticket_notes"

    id = Column(Integer, primary_key=True)
    ticket_id = Column(Integer, ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False, index=True)
    author = Column(String(320), nullable=False)
    text = Column(Text(), nullable=False)
    created_at = Column(UTCDateTime(), nullable=False)


class SavedReply(Base):
    """A reply text leads keep (``title`` unique) for agents to insert and edit before sending."""

    __tablename__ = "saved_replies"

    id = Column(Integer, primary_key=True)
    title = Column(String(100), nullable=False, unique=True)
    text = Column(Text(), nullable=False)
    updated_by = Column(String(320), nullable=False)
    updated_at = Column(UTCDateTime(), nullable=False)
