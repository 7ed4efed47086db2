"""Rasa's tracker store, built by Rasa itself from the endpoint config the launcher writes, on SQLite and
PostgreSQL; and the memory each Rasa server keeps of the trackers it saved (bot/rasa_plugins/tracker_cache.py)."""
from __future__ import annotations

import asyncio
from typing import List

from rasa.core.tracker_store import SQLTrackerStore, TrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, Event, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig
from sqlalchemy import event as sa_event
from sqlalchemy import text

from bot.launcher import tracker_store_config
from bot.rasa_plugins.tracker_cache import CachedSQLTrackerStore
from bot.settings import PROJECT_ROOT

DOMAIN = Domain.load(str(PROJECT_ROOT / "domain.yml"))


def store_for(database_url: str, cache_events: int = 10) -> TrackerStore:
    """The store a Rasa server builds from the launcher's endpoint config."""
    return TrackerStore.create(EndpointConfig.from_dict(tracker_store_config(database_url, cache_events)), DOMAIN)


def session(text: str) -> List[Event]:
    return [ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen"), UserUttered(text)]


def as_rasa_reads_it(database_url: str, sender: str) -> dict:
    tracker = asyncio.run(store_for(database_url, cache_events=0).retrieve(sender))
    assert tracker is not None
    return tracker.current_state()


def test_a_conversation_survives_in_the_sql_tracker_store(database_url: str) -> None:
    store = TrackerStore.create(EndpointConfig.from_dict(tracker_store_config(database_url)), DOMAIN)
    tracker = DialogueStateTracker.from_events("visitor-1", [UserUttered("I was charged twice")], DOMAIN.slots)
    asyncio.run(store.save(tracker))
    again = TrackerStore.create(EndpointConfig.from_dict(tracker_store_config(database_url)), DOMAIN)
    assert asyncio.run(again.retrieve("visitor-1")).latest_message.text == "I was charged twice"


def test_rasa_builds_the_cached_store_from_the_launchers_config_and_its_own_without_a_cache(database_url: str) -> None:
    # Rasa falls back to an in-memory store, with a warning only, when a store's class can't be loaded.
    assert isinstance(store_for(database_url, cache_events=10), CachedSQLTrackerStore)
    plain = store_for(database_url, cache_events=0)
    assert type(plain) is SQLTrackerStore


def test_the_next_message_reads_the_saved_tracker_from_memory_as_the_database_holds_it(database_url: str) -> None:
    store = store_for(database_url)
    assert isinstance(store, CachedSQLTrackerStore)
    tracker = DialogueStateTracker.from_events("visitor-2", session("how do I cancel"), DOMAIN.slots)
    asyncio.run(store.save(tracker))
    again = asyncio.run(store.retrieve("visitor-2"))
    assert (store.hits, store.misses) == (1, 0)
    assert again is not None and again.current_state() == as_rasa_reads_it(database_url, "visitor-2")
    again.update(ActionExecuted("utter_cancel"))
    asyncio.run(store.save(again))
    assert asyncio.run(store.retrieve("visitor-2")).current_state() == as_rasa_reads_it(database_url, "visitor-2")
    assert store.hits == 2


def test_a_tracker_another_server_wrote_to_since_is_read_from_the_database(database_url: str) -> None:
    server_a, server_b = store_for(database_url), store_for(database_url)
    asyncio.run(server_a.save(DialogueStateTracker.from_events("visitor-3", session("hello"), DOMAIN.slots)))
    # Failover: server B answers the next message.
    on_b = asyncio.run(server_b.retrieve("visitor-3"))
    on_b.update(UserUttered("my card was declined"))
    asyncio.run(server_b.save(on_b))
    back_on_a = asyncio.run(server_a.retrieve("visitor-3"))
    assert back_on_a.latest_message.text == "my card was declined"
    assert isinstance(server_a, CachedSQLTrackerStore) and server_a.misses == 1


def test_a_tracker_changed_but_not_saved_is_read_again_from_the_database(database_url: str) -> None:
    store = store_for(database_url)
    asyncio.run(store.save(DialogueStateTracker.from_events("visitor-4", session("hi"), DOMAIN.slots)))
    handed_out = asyncio.run(store.retrieve("visitor-4"))
    handed_out.update(UserUttered("this message's processing failed"))
    # e.g. the processor raised before saving
    again = asyncio.run(store.retrieve("visitor-4"))
    assert again is not handed_out and again.latest_message.text == "hi"


def test_a_new_model_with_a_new_domain_reads_from_the_database(database_url: str) -> None:
    store = store_for(database_url)
    asyncio.run(store.save(DialogueStateTracker.from_events("visitor-5", session("hi"), DOMAIN.slots)))
    store.domain = Domain.load(str(PROJECT_ROOT / "domain.yml"))  # what Rasa does when it loads a model
    asyncio.run(store.retrieve("visitor-5"))
    assert isinstance(store, CachedSQLTrackerStore) and (store.hits, store.misses) == (0, 1)


def test_a_tracker_that_went_on_into_a_new_session_is_not_kept(database_url: str) -> None:
    store = store_for(database_url)
    two_sessions = session("hi") + [SlotSet("plan", "premium")] + session("back after a day")
    asyncio.run(store.save(DialogueStateTracker.from_events("visitor-6", two_sessions, DOMAIN.slots)))
    again = asyncio.run(store.retrieve("visitor-6"))
    assert isinstance(store, CachedSQLTrackerStore) and store.misses == 1
    assert again.current_state() == as_rasa_reads_it(database_url, "visitor-6")


def test_the_memory_keeps_at_most_cache_events_events(database_url: str) -> None:
    store = store_for(database_url, cache_events=2 * len(session("hi")))
    for sender in ("a", "b", "c"):
        asyncio.run(store.save(DialogueStateTracker.from_events(sender, session("hi"), DOMAIN.slots)))
    for sender in ("a", "b", "c"):
        asyncio.run(store.retrieve(sender))
    assert isinstance(store, CachedSQLTrackerStore) and (store.hits, store.misses) == (2, 1)


def stored_rows(store: TrackerStore, sender: str) -> int:
    assert isinstance(store, SQLTrackerStore)
    with store.engine.connect() as connection:
        return int(connection.execute(text("SELECT COUNT(*) FROM events WHERE sender_id = :s"), {"s": sender}).scalar())


def distinct_rows(store: TrackerStore, sender: str) -> int:
    assert isinstance(store, SQLTrackerStore)
    with store.engine.connect() as connection:
        return int(connection.execute(
            text("SELECT COUNT(*) FROM (SELECT DISTINCT timestamp, data FROM events WHERE sender_id = :s) AS d"), {"s": sender}
        ).scalar())


def test_a_tracker_from_memory_is_saved_without_counting_its_stored_events_and_each_event_once(database_url: str) -> None:
    store = store_for(database_url)
    assert isinstance(store, CachedSQLTrackerStore)
    asyncio.run(store.save(DialogueStateTracker.from_events("visitor-7", session("hi"), DOMAIN.slots)))
    statements: List[str] = []
    sa_event.listen(store.engine, "before_cursor_execute", lambda _c, _k, statement, *_rest: statements.append(statement))
    handed_out = asyncio.run(store.retrieve("visitor-7"))
    handed_out.update(ActionExecuted("utter_greet"))
    handed_out.update(UserUttered("and my card was declined"))
    asyncio.run(store.save(handed_out))
    assert store.hits == 1 and not [s for s in statements if "count(" in s.lower()]
    # Each event once: Rasa's count leaves out the action_session_start before the session's start, so
    # counting would store the last stored event again (an action_listen twice per conversation, before).
    assert stored_rows(store, "visitor-7") == len(handed_out.events) == distinct_rows(store, "visitor-7")
    assert as_rasa_reads_it(database_url, "visitor-7") == handed_out.current_state()
    # The turn in which the session expired: the new session's events are stored after the old ones, once.
    again = asyncio.run(store.retrieve("visitor-7"))
    for new_event in session("back after a day"):
        again.update(new_event)
    asyncio.run(store.save(again))
    assert stored_rows(store, "visitor-7") == len(again.events) == distinct_rows(store, "visitor-7")
    assert as_rasa_reads_it(database_url, "visitor-7")["latest_message"]["text"] == "back after a day"


def test_a_save_remembers_the_newest_event_id_from_its_own_insert_and_the_next_read_is_still_from_memory(
    database_url: str,
) -> None:
    store = store_for(database_url)
    assert isinstance(store, CachedSQLTrackerStore)
    asyncio.run(store.save(DialogueStateTracker.from_events("visitor-11", session("hi"), DOMAIN.slots)))
    statements: List[str] = []
    sa_event.listen(store.engine, "before_cursor_execute", lambda _c, _k, statement, *_rest: statements.append(statement))
    for turn in ("my card was declined", "and now?"):
        tracker = asyncio.run(store.retrieve("visitor-11"))
        tracker.update(ActionExecuted("action_listen"))
        tracker.update(UserUttered(turn))
        statements.clear()
        asyncio.run(store.save(tracker))
        # Only inserts: neither Rasa's count nor a look-up of the newest id after them.
        assert [s.split()[0].upper() for s in statements] and all(s.split()[0].upper() == "INSERT" for s in statements)
    # A save with nothing new, then another server's write: the remembered id still tells them apart.
    asyncio.run(store.save(asyncio.run(store.retrieve("visitor-11"))))
    asyncio.run(store.save(asyncio.run(store.retrieve("visitor-11"))))
    assert (store.hits, store.misses) == (4, 0)
    other = store_for(database_url, cache_events=0)
    written = asyncio.run(other.retrieve("visitor-11"))
    written.update(UserUttered("from the other server"))
    asyncio.run(other.save(written))
    assert asyncio.run(store.retrieve("visitor-11")).latest_message.text == "from the other server"
    assert store.misses == 1


def test_rasas_own_store_beside_the_cached_one_leaves_no_inserted_ids_behind(database_url: str) -> None:
    from bot.rasa_plugins import tracker_cache

    store_for(database_url)  # the listener is in place
    plain = store_for(database_url, cache_events=0)
    assert not isinstance(plain, CachedSQLTrackerStore)
    before = dict(tracker_cache._inserted_ids)
    asyncio.run(plain.save(DialogueStateTracker.from_events("visitor-12", session("hi"), DOMAIN.slots)))
    assert tracker_cache._inserted_ids == before


def test_a_tracker_read_again_before_its_save_stores_each_new_event_once(database_url: str) -> None:
    store = store_for(database_url)
    asyncio.run(store.save(DialogueStateTracker.from_events("visitor-8", session("hi"), DOMAIN.slots)))
    handed_out = asyncio.run(store.retrieve("visitor-8"))
    # Another read of the conversation (Rasa's tracker API) comes between, from the database.
    read_between = asyncio.run(store.retrieve("visitor-8"))
    read_between.update(UserUttered("written by the read in between"))
    asyncio.run(store.save(read_between))
    handed_out.update(UserUttered("then the first one's turn"))
    asyncio.run(store.save(handed_out))
    # The first tracker's own new event is stored after the other's: both new messages once, nothing twice.
    assert stored_rows(store, "visitor-8") == len(session("hi")) + 2 == distinct_rows(store, "visitor-8")


def test_a_read_of_the_tracker_api_during_a_turn_does_not_make_its_save_store_an_event_twice(database_url: str) -> None:
    store = store_for(database_url)
    asyncio.run(store.save(DialogueStateTracker.from_events("visitor-9", session("hi"), DOMAIN.slots)))
    in_the_turn = asyncio.run(store.retrieve("visitor-9"))
    asyncio.run(store.retrieve("visitor-9"))  # e.g. GET /conversations/visitor-9/tracker, never saved
    in_the_turn.update(UserUttered("my card was declined"))
    asyncio.run(store.save(in_the_turn))
    assert stored_rows(store, "visitor-9") == len(in_the_turn.events) == distinct_rows(store, "visitor-9")
