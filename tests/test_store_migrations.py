"""The schema comes from Alembic migrations: idempotent, concurrent-safe, matching the models."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Dict

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Boolean, Column, DateTime, Integer, SmallInteger, String, create_engine, inspect, null, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import declarative_base

from bot.protocol import ClosedHow
from bot.settings import PROJECT_ROOT
from bot.store import customers, feedback, messages, seed, tickets
from bot.store.database import (
    Store,
    StoreUnavailableError,
    current_revision,
    head_revision,
    make_engine,
    migrate,
)
from bot.store.models import Base, Feedback
from tests.conftest import UNREACHABLE_DATABASE_URL

NOW = datetime(2026, 11, 18, 10, 0, tzinfo=timezone.utc)
TABLES = {"customers", "tickets", "ticket_events", "feedback", "alembic_version"}


def test_migrations_run_twice_without_error(database_url: str) -> None:
    assert current_revision(database_url) is None
    migrate(database_url)
    migrate(database_url)
    assert current_revision(database_url) == head_revision()
    engine = make_engine(database_url)
    try:
        assert TABLES <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_the_models_match_the_migrated_schema(database_url: str) -> None:
    migrate(database_url)
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={"compare_type": True, "include_name": lambda name, kind, _: name != "sqlite_sequence"},
            )
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_the_store_never_creates_tables_only_migrations_do(database_url: str) -> None:
    # Migrations run once, at start-up (``migrate``): using the store neither migrates nor creates tables.
    store = Store(database_url)
    try:
        with pytest.raises(StoreUnavailableError):
            feedback.record_feedback(store, "conv", "a", True, NOW)
        assert current_revision(database_url) is None
        engine = make_engine(database_url)
        try:
            assert "feedback" not in inspect(engine).get_table_names()
        finally:
            engine.dispose()

        migrate(database_url)
        assert current_revision(database_url) == head_revision()
        messages.record_message(store, "conv", "bot", "the answer", NOW,
                                {"metadata": {"deskmate": {"type": "article", "article_id": "a"}}})
        feedback.record_feedback(store, "conv", "a", True, NOW)
        assert [(r.article_id, r.helpful) for r in feedback.feedback_for(store, "conv")] == [("a", True)]
    finally:
        store.dispose()


LegacyBase = declarative_base()


class LegacyFeedback(LegacyBase):
    """The feedback table as ``create_all`` made it before migrations existed."""

    __tablename__ = "feedback"
    id = Column(Integer, primary_key=True)
    conversation_id = Column(String(255), nullable=False, index=True)
    article_id = Column(String(100), nullable=True, index=True)
    helpful = Column(Boolean, nullable=True)
    csat = Column(SmallInteger, nullable=True)
    created_at = Column(DateTime(timezone=True), nullable=False)


def test_a_database_made_before_migrations_keeps_its_feedback(database_url: str) -> None:
    engine = create_engine(database_url, future=True)
    LegacyBase.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(
            LegacyFeedback.__table__.insert(),
            {"conversation_id": "old", "article_id": "refund-policy", "helpful": True, "created_at": NOW},
        )
    engine.dispose()

    migrate(database_url)
    store = Store(database_url)
    try:
        rows = feedback.feedback_for(store, "old")
    finally:
        store.dispose()
    assert [(r.article_id, r.helpful, r.created_at) for r in rows] == [("refund-policy", True, NOW)]
    assert current_revision(database_url) == head_revision()


def test_the_database_refuses_a_csat_score_outside_one_to_five(store: Store) -> None:
    with store.session() as session:
        session.add(Feedback(conversation_id="c", csat=6))
        with pytest.raises(IntegrityError):
            session.commit()


def test_a_sqlite_store_is_shared_safely_between_processes(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'nested' / 'store.db'}")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()


# The functions that take a database URL (migrations, schema revision).
URL_CALLS: Dict[str, Callable[[str], object]] = {
    "migrate": migrate,
    "current_revision": current_revision,
}

# The functions that take a Store (built without connecting: each call connects).
STORE_CALLS: Dict[str, Callable[[Store], object]] = {
    "record_feedback": lambda store: feedback.record_feedback(store, "c", "a", True, NOW),
    "feedback_for": lambda store: feedback.feedback_for(store, "c"),
    "find_customer": lambda store: customers.find_customer(store, "free@demo.example"),
    "all_customers": customers.all_customers,
    "seed_demo_customers": lambda store: seed.seed_demo_customers(store, PROJECT_ROOT / "kb" / "demo_customers.yml", NOW),
    "open_ticket": lambda store: tickets.open_ticket(
        store,
        tickets.TicketRequest(conversation_id="c", plan="free", priority="normal", reason="requested", sla_due_at=NOW),
        NOW,
    ),
    "get_ticket": lambda store: tickets.get_ticket(store, 1),
    "open_ticket_for_conversation": lambda store: tickets.open_ticket_for_conversation(store, "c"),
    "tickets_for_customer": lambda store: tickets.tickets_for_customer(store, 1),
    "tickets_for_conversation": lambda store: tickets.tickets_for_conversation(store, "c"),
    "ticket_events": lambda store: tickets.ticket_events(store, 1),
    "assign_ticket": lambda store: tickets.assign_ticket(store, 1, "ann@help.example", NOW),
    "record_agent_reply": lambda store: tickets.record_agent_reply(store, 1, "ann@help.example", NOW),
    "close_ticket (resolved)": lambda store: tickets.close_ticket(store, 1, "bot", NOW, how=ClosedHow.RESOLVED),
    "close_ticket (handed back)": lambda store: tickets.close_ticket(store, 1, "bot", NOW, how=ClosedHow.HANDED_BACK),
}


@pytest.mark.parametrize("name", sorted(URL_CALLS))
def test_an_unreachable_database_url_raises_store_unavailable(name: str) -> None:
    with pytest.raises(StoreUnavailableError):
        URL_CALLS[name](UNREACHABLE_DATABASE_URL)


@pytest.mark.parametrize("name", sorted(STORE_CALLS))
def test_an_unreachable_database_raises_store_unavailable(name: str, unreachable_store: Store) -> None:
    with pytest.raises(StoreUnavailableError):
        STORE_CALLS[name](unreachable_store)


def test_an_unreadable_sqlite_file_raises_store_unavailable(tmp_path: Path) -> None:
    (tmp_path / "store.db").write_text("this is not a database")
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        with pytest.raises(StoreUnavailableError):
            customers.all_customers(store)
    finally:
        store.dispose()


def test_the_migration_creates_the_unique_open_ticket_index(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            assert "tickets" not in inspect(connection).get_table_names()
        # SQLite answers PRAGMA index_list from a pooled connection's cached
        # schema: inspect through a connection opened after the migration.
        engine.dispose()
        migrate(database_url)
        with engine.connect() as connection:
            indexes = {ix["name"]: ix for ix in inspect(connection).get_indexes("tickets")}
            assert indexes["uq_tickets_open_conversation"]["unique"]
            assert connection.execute(text("SELECT COUNT(*) FROM tickets")).scalar() == 0
    finally:
        engine.dispose()


def test_migration_0005_backfills_kind_and_article_id_from_the_payloads(database_url: str) -> None:
    from alembic import command

    from bot.store.database import _alembic_config
    from bot.store.models import Message
    from tests.test_store_messages import KIND_CASES, stored_kinds

    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            command.upgrade(_alembic_config(database_url, connection), "0004")
        with engine.begin() as connection:
            assert "kind" not in {c["name"] for c in inspect(connection).get_columns("messages")}
            # Only the columns 0004 has (the insert names no others); SQL NULL as well as JSON null.
            rows = [{"conversation_id": "old", "sender": "bot", "text": str(n), "payload": payload, "created_at": NOW}
                    for n, (payload, _, _) in enumerate(KIND_CASES)]
            rows.append({"conversation_id": "old", "sender": "visitor", "text": "sql null", "payload": null(),
                         "created_at": NOW})
            for row in rows:
                connection.execute(Message.__table__.insert(), row)
    finally:
        engine.dispose()

    migrate(database_url)

    assert current_revision(database_url) == head_revision()
    store = Store(database_url)
    try:
        kinds = stored_kinds(store)
    finally:
        store.dispose()
    assert kinds == [(kind, article_id) for _, kind, article_id in KIND_CASES] + [(None, None)]
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            indexes = {ix["name"]: ix["column_names"] for ix in inspect(connection).get_indexes("messages")}
        assert indexes["ix_messages_kind_created_at"][:2] == ["kind", "created_at"]
    finally:
        engine.dispose()
