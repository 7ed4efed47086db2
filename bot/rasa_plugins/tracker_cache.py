"""Rasa's SQL tracker store, with each Rasa server keeping the trackers it saved in memory.

Rasa 3.6's ``SQLTrackerStore.retrieve`` reads every event of the conversation's
session and replays it into a new tracker on every message: 26% of a Rasa
server's CPU time under load, growing with the conversation (bench/README.md,
"Cost of a message"). The gateway keeps each conversation on one Rasa server
(bot/rasa_servers.py), so the tracker that server saved last is almost always
the one it reads next. This store keeps it, and before handing it out asks the
database one indexed question: is the newest event of the conversation still
the one this server wrote? If another server (failover), a retraining or a
restart wrote since, or the entry is missing, it reads the database as Rasa
does. The database stays the record; the cache only skips re-reading it.

An entry is handed out once (the processor mutates the tracker it gets), and
put back by ``save``; a tracker that was read and not saved is read from the
database next time. Trackers that span a session start are not kept, so a
cached tracker always holds what Rasa's own read would (the latest session).

Saving a tracker handed out from memory skips Rasa's count of the session's
stored events (a query over the whole session, 7% of a Rasa server's time
under load, growing with the conversation): the entry already says how many
of its events the database holds, and Rasa's lock keeps one message of a
conversation in the processor at a time, so nobody stored more since. The
tracker object itself is recognised, so a read in between (Rasa's tracker
API) changes nothing. Rasa's count was also wrong for such a tracker: it
leaves out the ``action_session_start`` stored just before the session's
start, which a tracker kept since its first save still holds, so the last
stored event was stored twice (bench/README.md, "Cost of a message").

The newest event id an entry remembers comes from the save itself (the ids the
database gave the rows just inserted, seen by an SQLAlchemy ``after_insert``
listener), not from one more query after it (6% of a Rasa server's time under
load, bench/README.md, "Cost of a message").

Used through endpoints.yml (``type: bot.rasa_plugins.tracker_cache.CachedSQLTrackerStore``,
written by bot/launcher.py) with Rasa's SQL settings plus ``cache_events``: the
events kept per server in all, least recently saved conversations dropped first
(0 turns the cache off). A kept event costs about 2.4 KB of memory (measured with
tracemalloc on 102 trackers, 11,076 events, of a load run), so the default
50,000 is about 120 MB per Rasa server.
"""
from __future__ import annotations

import itertools
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Dict, Iterator, Optional, Text, Tuple

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import SessionStarted
from rasa.shared.core.trackers import DialogueStateTracker

DEFAULT_CACHE_EVENTS = 50_000
MAX_HANDED_OUT = 1_000

# (id of the engine, sender id) -> the highest event id inserted for it; filled by ``_note_insert``
# for the engines of this module's stores only (Rasa's own store beside them takes nothing out)
# and taken by the store that did the insert.
_inserted_ids: Dict[Tuple[int, Text], int] = {}
# Weak: an engine's id() may be reused by another engine once it is gone (a test saw Rasa's own store's
# inserts noted under a discarded cached store's engine id).
_watched_engines: "weakref.WeakSet[Any]" = weakref.WeakSet()


@sa.event.listens_for(SQLTrackerStore.SQLEvent, "after_insert")
def _note_insert(mapper: Any, connection: Any, target: Any) -> None:
    if connection.engine not in _watched_engines or target.id is None:
        return
    key = (id(connection.engine), target.sender_id)
    if target.id > _inserted_ids.get(key, -1):
        _inserted_ids[key] = target.id


@dataclass
class _Entry:
    """A tracker as this server saved it: its event count and the database's newest event id then."""

    tracker: DialogueStateTracker
    number_of_events: int
    latest_event_id: Optional[int]
    domain: Optional[Domain]


class CachedSQLTrackerStore(SQLTrackerStore):
    """``SQLTrackerStore`` that serves a conversation's tracker from memory while the database agrees.

    ``hits`` and ``misses`` count reads answered from memory and from the database.
    """

    def __init__(self, *args: Any, cache_events: int = DEFAULT_CACHE_EVENTS, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cache_events = max(0, int(cache_events))
        self._cache: "OrderedDict[str, _Entry]" = OrderedDict()
        self._events_kept = 0
        # Entries handed out from memory and not saved yet (their tracker, and how many of its events are stored).
        self._handed_out: Dict[Text, _Entry] = {}
        self.hits = 0
        self.misses = 0
        _watched_engines.add(self.engine)
        self._latest_event_id_query = sa.select(sa.func.max(self.SQLEvent.id)).where(
            self.SQLEvent.sender_id == sa.bindparam("sender_id")
        )

    def _latest_event_id(self, sender_id: Text) -> Optional[int]:
        """The id of the conversation's newest stored event (None: no events); one index lookup, asked on a
        plain connection (a third of the time of an ORM session and query: 0.09 against 0.27 ms)."""
        with self.engine.connect() as connection:
            latest = connection.execute(self._latest_event_id_query, {"sender_id": sender_id}).scalar()
        return int(latest) if latest is not None else None

    def _still_current(self, entry: _Entry, sender_id: Text) -> bool:
        return (
            entry.domain is self.domain
            # Nothing was added to the tracker after it was saved.
            and len(entry.tracker.events) == entry.number_of_events
            and self._latest_event_id(sender_id) == entry.latest_event_id
        )

    async def retrieve(self, sender_id: Text) -> Optional[DialogueStateTracker]:
        """The conversation's tracker for its latest session (Rasa's contract): from memory when the
        database's newest event is the one this server saved last, else read and replayed from the
        database. Raises what ``SQLTrackerStore.retrieve`` raises (SQLAlchemy errors)."""
        entry = self._forget(sender_id)
        if entry is not None and self._still_current(entry, sender_id):
            self.hits += 1
            if len(self._handed_out) >= MAX_HANDED_OUT:
                # Left by reads never saved (Rasa's tracker API); a tracker not found here is saved by Rasa's count.
                self._handed_out.clear()
            self._handed_out[sender_id] = entry
            return entry.tracker
        self.misses += 1
        return await super().retrieve(sender_id)

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Store the tracker's new events (``SQLTrackerStore.save``), then keep the tracker for the next
        read. Raises what ``SQLTrackerStore.save`` raises; nothing is kept when it does."""
        self._forget(tracker.sender_id)
        inserted_key = (id(self.engine), tracker.sender_id)
        _inserted_ids.pop(inserted_key, None)
        handed_out = self._handed_out.get(tracker.sender_id)
        if handed_out is not None and handed_out.tracker is not tracker:
            handed_out = None
        try:
            await super().save(tracker)
        finally:
            if handed_out is not None:
                del self._handed_out[tracker.sender_id]
        inserted = _inserted_ids.pop(inserted_key, None)
        if not 0 < len(tracker.events) <= self.cache_events or not _one_session(tracker):
            return
        latest: Optional[int]
        if inserted is not None:
            latest = inserted
        elif handed_out is not None and handed_out.number_of_events == len(tracker.events):
            latest = handed_out.latest_event_id  # nothing new was stored
        else:
            latest = self._latest_event_id(tracker.sender_id)
        self._cache[tracker.sender_id] = _Entry(tracker, len(tracker.events), latest, self.domain)
        self._events_kept += len(tracker.events)
        while self._events_kept > self.cache_events:
            self._forget(next(iter(self._cache)))

    def _additional_events(self, session: Any, tracker: DialogueStateTracker) -> Iterator:
        """The tracker's events not yet in the database (Rasa's contract): for a tracker handed out from
        memory, those after the ones it held when it was saved; else Rasa's count query."""
        handed_out = self._handed_out.get(tracker.sender_id)
        if handed_out is None or handed_out.tracker is not tracker or handed_out.number_of_events > len(tracker.events):
            return super()._additional_events(session, tracker)
        return itertools.islice(tracker.events, handed_out.number_of_events, len(tracker.events))

    def _forget(self, sender_id: Text) -> Optional[_Entry]:
        entry = self._cache.pop(sender_id, None)
        if entry is not None:
            self._events_kept -= entry.number_of_events
        return entry


def _one_session(tracker: DialogueStateTracker) -> bool:
    """Whether the tracker holds at most one session start: a tracker that went on into a new session
    holds the old session's events too, which Rasa's read (latest session only) would not."""
    return sum(isinstance(event, SessionStarted) for event in tracker.events) <= 1


__all__ = ["CachedSQLTrackerStore", "DEFAULT_CACHE_EVENTS"]
