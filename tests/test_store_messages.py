"""Conversation messages: stored in order per conversation, payloads kept exactly; migration 0001 -> 0002."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict

import pytest
from alembic import command
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError

from bot.store.database import (
    Store,
    StoreUnavailableError,
    _alembic_config,
    current_revision,
    head_revision,
    make_engine,
    migrate,
)
from bot.store.messages import (
    MessageRecord,
    NewMessage,
    conversation_messages,
    payload_columns,
    record_message,
    record_messages,
)
from bot.store.models import Message, Ticket
from bot.store.staff import add_staff, authenticate
from bot.store.tickets import AlreadyStoredError, get_ticket, queue, record_visitor_message

NOW = datetime(2026, 11, 18, 10, 0, tzinfo=timezone.utc)
PAYLOAD = {
    "quick_replies": [{"title": "Yes", "payload": '/feedback{"helpful": true, "article_id": "double-charge"}'}],
    "metadata": {"deskmate": {"type": "article", "article_id": "double-charge", "score": 0.8125, "shown": None}},
}


def test_messages_come_back_in_order_per_conversation(store: Store) -> None:
    said = []
    for n, (conversation, sender) in enumerate(
        [("a", "visitor"), ("b", "visitor"), ("a", "bot"), ("b", "bot"), ("a", "system"), ("a", "visitor")]
    ):
        said.append(record_message(store, conversation, sender, f"{conversation}{n}", NOW + timedelta(seconds=n)))

    a = conversation_messages(store, "a")
    assert [m.text for m in a] == ["a0", "a2", "a4", "a5"]
    assert [m.sender for m in a] == ["visitor", "bot", "system", "visitor"]
    assert [m.id for m in a] == sorted(m.id for m in a)
    assert [m.text for m in conversation_messages(store, "b")] == ["b1", "b3"]
    assert a == [m for m in said if m.conversation_id == "a"]
    assert conversation_messages(store, "nobody") == []


def test_ids_are_the_order_even_when_clocks_disagree(store: Store) -> None:
    later = record_message(store, "c", "visitor", "first", NOW + timedelta(minutes=5))
    earlier = record_message(store, "c", "bot", "second", NOW)
    assert earlier.id > later.id
    assert [m.text for m in conversation_messages(store, "c")] == ["first", "second"]


def test_a_client_catches_up_after_the_last_id_it_saw(store: Store) -> None:
    ids = [record_message(store, "c", "visitor", str(n), NOW).id for n in range(5)]
    assert [m.text for m in conversation_messages(store, "c", after_id=ids[1])] == ["2", "3", "4"]
    assert [m.text for m in conversation_messages(store, "c", after_id=ids[1], limit=2)] == ["2", "3"]
    assert conversation_messages(store, "c", after_id=ids[-1]) == []
    assert [m.text for m in conversation_messages(store, "c", limit=1)] == ["0"]


def test_payloads_round_trip_as_json(store: Store) -> None:
    stored = record_message(store, "c", "bot", "", NOW, payload=PAYLOAD)
    assert stored.payload == PAYLOAD and stored.text == ""
    [read] = conversation_messages(store, "c")
    assert read == stored
    assert read.payload == PAYLOAD
    assert read.created_at == NOW and read.created_at.utcoffset() == timedelta(0)


def test_a_message_without_payload_keeps_none(store: Store) -> None:
    record_message(store, "c", "visitor", "hi", NOW)
    [read] = conversation_messages(store, "c")
    assert read.payload is None and read.author is None


def test_agent_messages_carry_their_author(store: Store) -> None:
    record_message(store, "c", "agent", "Hello, Maria here", NOW, author=" Maria@Support.example ")
    [read] = conversation_messages(store, "c")
    assert (read.sender, read.author) == ("agent", "maria@support.example")


def test_records_are_plain_copies(store: Store) -> None:
    stored = record_message(store, "c", "bot", "x", NOW, payload={"quick_replies": []})
    stored.payload["quick_replies"].append("tampered")  # type: ignore[index]
    assert conversation_messages(store, "c")[0].payload == {"quick_replies": []}
    with pytest.raises(AttributeError):
        stored.text = "changed"  # type: ignore[misc]
    assert isinstance(stored, MessageRecord)


# (payload, kind, article_id): messages.kind / messages.article_id as the store writes them and as
# migration 0005 backfills them (tests/test_store_migrations.py uses the same cases).
KIND_CASES = [
    (PAYLOAD, "article", "double-charge"),
    ({"quick_replies": [], "metadata": {"deskmate": {"type": "suggestions", "article_ids": ["a", "b"]}}},
     "suggestions", None),
    ({"metadata": {"deskmate": {"type": "contact", "article_id": "café-ü", "title": "Contact"}}}, "contact", "café-ü"),
    ({"quick_replies": [], "metadata": {}}, None, None),
    ({"quick_replies": []}, None, None),
    (None, None, None),
    ({"metadata": "deskmate"}, None, None),
    ({"metadata": {"deskmate": {"type": None, "article_id": None}}}, None, None),
    ({"metadata": {"deskmate": {"type": 3, "article_id": ["x"]}}}, None, None),
    ({"metadata": {"deskmate": {"article_id": "only-an-id"}}}, None, "only-an-id"),
    ({"metadata": {"deskmate": {"type": "t" * 25, "article_id": "a" * 120}}}, "t" * 20, "a" * 100),
]


def stored_kinds(store: Store) -> list:
    with store.session() as session:
        return [tuple(row) for row in session.execute(
            select(Message.kind, Message.article_id).order_by(Message.id))]


def test_the_kind_and_article_id_columns_are_filled_on_write(store: Store) -> None:
    expected = [(kind, article_id) for _, kind, article_id in KIND_CASES]
    assert [tuple(payload_columns(p).values()) for p, _, _ in KIND_CASES] == expected
    record_message(store, "one", "bot", "answer", NOW, payload=KIND_CASES[0][0])
    record_messages(store, "turn", [NewMessage("bot", str(n), payload) for n, (payload, _, _) in enumerate(KIND_CASES[1:])], NOW)
    record_message(store, "one", "visitor", "no payload", NOW)
    record_message(store, "one", "agent", "hi", NOW, author="maria@support.example",
                   payload={"metadata": {"deskmate": {"type": "agent_message", "agent_name": "Maria"}}})
    assert stored_kinds(store) == expected + [(None, None), ("agent_message", None)]


@pytest.mark.parametrize(
    "call, problem",
    [
        (lambda store: record_message(store, "c", "customer", "hi", NOW), "sender"),
        (lambda store: record_message(store, "c", "Bot", "hi", NOW), "sender"),
        (lambda store: record_message(store, " ", "visitor", "hi", NOW), "conversation_id"),
        (lambda store: record_message(store, "x" * 256, "visitor", "hi", NOW), "conversation_id"),
        (lambda store: record_message(store, "c", "visitor", None, NOW), "text"),
        (lambda store: record_message(store, "c", "visitor", "hi", datetime(2026, 11, 18, 10)), "timezone-aware"),
        (lambda store: record_message(store, "c", "bot", "hi", NOW, payload={"at": NOW}), "JSON"),
        (lambda store: record_message(store, "c", "bot", "hi", NOW, payload=["a list"]), "JSON object"),
        (lambda store: record_message(store, "c", "agent", "hi", NOW), "author"),
        (lambda store: record_message(store, "c", "agent", "hi", NOW, author="maria"), "author"),
        (lambda store: conversation_messages(store, "c", limit=0), "limit"),
    ],
)
def test_invalid_input_is_refused_before_reaching_the_database(
    store: Store, call: Callable[[Store], Any], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        call(store)
    assert conversation_messages(store, "c") == []


def test_the_database_refuses_an_unknown_sender_even_when_code_skips_the_check(store: Store) -> None:
    with store.session() as session:
        session.add(Message(conversation_id="c", sender="robot", text="hi", created_at=NOW))
        with pytest.raises(IntegrityError):
            session.commit()


def test_a_visitor_message_sent_again_with_its_client_id_is_stored_once_per_conversation(store: Store) -> None:
    client_id = "0f" * 16
    record_visitor_message(store, "c", "hi", NOW, client_id)
    with pytest.raises(AlreadyStoredError):
        record_visitor_message(store, "c", "hi", NOW + timedelta(seconds=5), client_id)
    record_visitor_message(store, "other", "hi", NOW, client_id)  # ids are the widget's: per conversation
    record_visitor_message(store, "c", "hi", NOW)  # without an id: nothing to compare
    assert [m.text for m in conversation_messages(store, "c")] == ["hi", "hi"]
    with pytest.raises(ValueError):
        record_visitor_message(store, "c", "hi", NOW, "not-hex")
    # Two gateways at once: the unique index refuses the second copy even when the code's check is skipped.
    with store.session() as session:
        session.add(Message(conversation_id="c", sender="visitor", text="hi", created_at=NOW,
                            client_message_id=client_id))
        with pytest.raises(IntegrityError):
            session.commit()


CALLS: Dict[str, Callable[[Store], object]] = {
    "record_message": lambda store: record_message(store, "c", "visitor", "hi", NOW),
    "conversation_messages": lambda store: conversation_messages(store, "c"),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_an_unreachable_database_raises_store_unavailable(name: str, unreachable_store: Store) -> None:
    with pytest.raises(StoreUnavailableError):
        CALLS[name](unreachable_store)


def _upgrade_to(url: str, revision: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            command.upgrade(_alembic_config(url, connection), revision)
    finally:
        engine.dispose()


def test_migrate_brings_a_0001_database_to_0002_keeping_its_rows(database_url: str) -> None:
    _upgrade_to(database_url, "0001")
    assert current_revision(database_url) == "0001"
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            assert not {"messages", "staff"} & set(inspect(connection).get_table_names())
            connection.execute(
                Ticket.__table__.insert(),
                {"conversation_id": "old", "plan": "free", "priority": "normal", "reason": "requested",
                 "status": "open", "created_at": NOW, "sla_due_at": NOW, "handover": {}},
            )
    finally:
        engine.dispose()

    migrate(database_url)

    assert current_revision(database_url) == head_revision()
    store = Store(database_url)
    try:
        assert [t.conversation_id for t in queue(store, NOW)] == ["old"]
        assert get_ticket(store, 1) is not None
        record_message(store, "old", "visitor", "still there?", NOW)
        add_staff(store, "ann@help.example", "Ann", "agent", "correct horse battery", NOW)
        assert authenticate(store, "ann@help.example", "correct horse battery") is not None
    finally:
        store.dispose()
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            indexes = {ix["name"]: ix["column_names"] for ix in inspect(connection).get_indexes("messages")}
            assert indexes["ix_messages_conversation_id_id"] == ["conversation_id", "id"]
    finally:
        engine.dispose()


def test_the_gateway_migration_can_be_undone(database_url: str) -> None:
    migrate(database_url)
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            command.downgrade(_alembic_config(database_url, connection), "0001")
        with engine.connect() as connection:
            tables = set(inspect(connection).get_table_names())
        assert "tickets" in tables and not {"messages", "staff"} & tables
    finally:
        engine.dispose()
    assert current_revision(database_url) == "0001"
