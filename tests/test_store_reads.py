"""How far a visitor has read their conversation (bot/store/reads.py), on SQLite and PostgreSQL."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

from bot.store.database import Store
from bot.store.messages import record_message
from bot.store.reads import Unread, mark_seen, unread

NOW = datetime(2026, 11, 28, 21, 0, tzinfo=timezone.utc)


def test_what_came_after_the_last_message_shown_is_unread(store: Store) -> None:
    record_message(store, "c1", "visitor", "i want a person", NOW)
    record_message(store, "c1", "bot", "Ticket #1 opened", NOW)
    assert unread(store, "c1") == Unread()  # never shown by our widget: nothing to count
    assert mark_seen(store, "c1", NOW) > 0
    assert unread(store, "c1") == Unread()
    record_message(store, "c1", "system", "Sam joined", NOW + timedelta(hours=1))
    record_message(store, "c1", "agent", "Refunded.", NOW + timedelta(hours=1), author="sam@support.example")
    record_message(store, "c2", "agent", "another conversation", NOW + timedelta(hours=1), author="sam@support.example")
    assert unread(store, "c1") == Unread(count=2, team_replied=True)
    record_message(store, "c1", "visitor", "thanks!", NOW + timedelta(hours=2))  # the visitor's own words don't count
    assert unread(store, "c1") == Unread(count=2, team_replied=True)
    mark_seen(store, "c1", NOW + timedelta(hours=2))
    assert unread(store, "c1") == Unread()


def test_a_bot_message_alone_is_unread_without_the_team_having_replied(store: Store) -> None:
    record_message(store, "c3", "visitor", "hello", NOW)
    mark_seen(store, "c3", NOW)
    record_message(store, "c3", "bot", "You asked: hello ...", NOW + timedelta(minutes=5))
    assert unread(store, "c3") == Unread(count=1, team_replied=False)


def test_two_gateways_marking_at_once_keep_one_mark_that_never_moves_back(store: Store) -> None:
    first = record_message(store, "c4", "bot", "hi", NOW)
    with ThreadPoolExecutor(4) as pool:
        marks = list(pool.map(lambda _: mark_seen(store, "c4", NOW), range(8)))
    assert set(marks) == {first.id}
    later = record_message(store, "c4", "bot", "more", NOW)
    assert mark_seen(store, "c4", NOW) == later.id
    assert unread(store, "c4") == Unread()
