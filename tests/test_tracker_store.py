"""Rasa's tracker store, built by Rasa itself from the endpoint config the launcher writes, on SQLite and PostgreSQL."""
from __future__ import annotations

import asyncio

from rasa.core.tracker_store import TrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from bot.launcher import tracker_store_config
from bot.settings import PROJECT_ROOT


def test_a_conversation_survives_in_the_sql_tracker_store(database_url: str) -> None:
    domain = Domain.load(str(PROJECT_ROOT / "domain.yml"))
    store = TrackerStore.create(EndpointConfig.from_dict(tracker_store_config(database_url)), domain)
    tracker = DialogueStateTracker.from_events("visitor-1", [UserUttered("I was charged twice")], domain.slots)
    asyncio.run(store.save(tracker))
    again = TrackerStore.create(EndpointConfig.from_dict(tracker_store_config(database_url)), domain)
    assert asyncio.run(again.retrieve("visitor-1")).latest_message.text == "I was charged twice"
