"""What reading a conversation's tracker costs the Rasa server, per message: Rasa's SQL tracker store
against Deskmate's CachedSQLTrackerStore (bot/rasa_plugins/tracker_cache.py), on the same database.

Builds conversations of 5, 25, 50 and 100 turns from real events (a turn's events as Rasa stored
them for one visitor message and its answer: taken from the tracker database ``--source``, by default
var/tracker.db after a bench or a demo), then per message: one ``retrieve`` and one ``save`` of a new
turn, as Rasa's processor does; CPU time (process time, so another load on the machine matters less)
per message, median of ``--rounds``.

    .venv/bin/python bench/tracker_store.py [--source var/tracker.db] [--rounds 30]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rasa.core.tracker_store import TrackerStore  # noqa: E402
from rasa.shared.core.domain import Domain  # noqa: E402
from rasa.shared.core.events import Event  # noqa: E402
from rasa.shared.core.trackers import DialogueStateTracker  # noqa: E402
from rasa.utils.endpoints import EndpointConfig  # noqa: E402

from bot.launcher import tracker_store_config  # noqa: E402
from bot.settings import PROJECT_ROOT  # noqa: E402

TURNS = (5, 25, 50, 100)


def sample_turns(source: Path) -> List[List[Dict[str, Any]]]:
    """The events of each turn (from one user message up to the next) of the longest stored conversation."""
    db = sqlite3.connect(str(source))
    sender = db.execute("SELECT sender_id FROM events GROUP BY sender_id ORDER BY count(*) DESC LIMIT 1").fetchone()
    if sender is None:
        raise SystemExit(f"no conversations in {source}: run the bot (or bench/throughput.py) first")
    turns: List[List[Dict[str, Any]]] = []
    for (data,) in db.execute("SELECT data FROM events WHERE sender_id = ? ORDER BY id", sender):
        event = json.loads(data)
        if event.get("event") == "user" or not turns:
            turns.append([])
        turns[-1].append(event)
    return [turn for turn in turns[1:] if turn]


def per_message_ms(cache_events: int, turns: List[List[Dict[str, Any]]], length: int, rounds: int) -> float:
    domain = Domain.load(str(PROJECT_ROOT / "domain.yml"))
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/tracker.db"
        store = TrackerStore.create(EndpointConfig.from_dict(tracker_store_config(url, cache_events)), domain)
        sender = "bench"
        start = [e for turn in (turns * (length // len(turns) + 1))[:length] for e in turn]
        asyncio.run(store.save(DialogueStateTracker.from_dict(sender, start, domain.slots)))
        samples = []
        for index in range(rounds):
            turn = [Event.from_parameters(event) for event in turns[index % len(turns)]]
            begun = time.process_time()
            tracker = asyncio.run(store.retrieve(sender))
            assert tracker is not None
            for event in turn:
                tracker.update(event)
            asyncio.run(store.save(tracker))
            samples.append((time.process_time() - begun) * 1000)
        return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", type=Path, default=PROJECT_ROOT / "var" / "tracker.db")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    turns = sample_turns(args.source)
    print("| turns in the conversation | Rasa's SQL store, ms CPU per message | cached, ms | cached / Rasa |")
    print("|---|---|---|---|")
    for length in TURNS:
        plain = per_message_ms(0, turns, length, args.rounds)
        cached = per_message_ms(50_000, turns, length, args.rounds)
        print(f"| {length} | {plain:.1f} | {cached:.1f} | {cached / plain:.2f} |", flush=True)


if __name__ == "__main__":
    main()
