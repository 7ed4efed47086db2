"""CPU time of Rasa's check of one action server answer: the full check (the validator built once,
every event tried against all of the schema's ``oneOf`` branches) against the short way by event
type of bot/rasa_plugins/action_validation.py.

Answers of ``--events`` events each (alternately a ``slot`` and a ``bot`` event, as the actions
send them), checked ``--checks`` times each way after 200 warm-up checks; prints the process time
per check in ms. Both ways must agree that the answer is valid (exits 1 otherwise).

    .venv/bin/python bench/action_validation.py [--checks 2000] [--events 2 20]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.rasa_plugins.action_validation import action_result_validator, valid_by_event_type  # noqa: E402


def answer(events: int) -> Dict[str, Any]:
    """An answer like the actions' own: slot events and bot utterances, one response."""
    made: List[Dict[str, Any]] = []
    for index in range(events):
        if index % 2 == 0:
            made.append({"event": "slot", "timestamp": None, "name": "last_article", "value": f"article-{index}"})
        else:
            made.append({"event": "bot", "timestamp": None, "text": "Here is what I found.",
                         "data": {"buttons": [{"title": "Yes", "payload": "/affirm"}]}, "metadata": {}})
    return {"events": made, "responses": [{"text": "Here is what I found."}]}


def per_check_ms(check: Callable[[Any], Any], value: Any, checks: int) -> float:
    for _ in range(200):
        check(value)
    started = time.process_time()
    for _ in range(checks):
        check(value)
    return 1000 * (time.process_time() - started) / checks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checks", type=int, default=2000)
    parser.add_argument("--events", type=int, nargs="+", default=[2, 20])
    args = parser.parse_args()
    full = action_result_validator()
    print("| events per answer | full check, ms | by event type, ms |")
    print("|---|---|---|")
    for events in args.events:
        value = answer(events)
        if not full.is_valid(value) or valid_by_event_type(value) is not True:
            print(f"the answer of {events} events is not valid both ways", file=sys.stderr)
            return 1
        print(f"| {events} | {per_check_ms(full.is_valid, value, args.checks):.3f} "
              f"| {per_check_ms(valid_by_event_type, value, args.checks):.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
