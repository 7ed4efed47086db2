"""How much the handoff decision and the ticket write add to a turn (target: <= 20 ms at p95).

Times what the action server does on a turn that hands off: verify the
visitor's token, look the customer up, decide (``should_open_ticket``), and
write the ticket with the facts of its opening (plus a repeat of the same
turn, which must find the open ticket instead of writing a second one). The
handover itself is read from the stored conversation when an agent opens it.
Runs on SQLite and, when reachable, PostgreSQL. Usage:

    .venv/bin/python bench/handoff_latency.py [--turns 300] [--postgres URL]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import List

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.clock import fixed_clock  # noqa: E402
from bot.handoff.policy import SupportPolicy  # noqa: E402
from bot.handoff.rules import Signal, Situation, should_open_ticket  # noqa: E402
from bot.handoff.service import HandoffService  # noqa: E402
from bot.identity import TOKEN_METADATA_KEY, issue_token  # noqa: E402
from bot.settings import get_settings  # noqa: E402
from bot.store.database import Store, StoreError, migrate  # noqa: E402
from bot.store.seed import seed_demo_customers  # noqa: E402

SECRET = "bench-secret-of-at-least-32-bytes-long!"
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc)


def measure(url: str, turns: int) -> List[float]:
    """Milliseconds per handing-off turn."""
    settings = get_settings()
    migrate(url)
    store = Store(url)
    seed_demo_customers(store, settings.demo_customers_file, NOW)
    service = HandoffService(store, SECRET, SupportPolicy.load(settings.support_policy_file), fixed_clock(NOW))
    metadata = {TOKEN_METADATA_KEY: issue_token(SECRET, "premium@demo.example", ttl=timedelta(days=3650))}
    timings: List[float] = []
    for index in range(turns):
        sender = f"bench-{uuid.uuid4().hex}"
        started = time.perf_counter()
        visitor = service.visitor(metadata)
        reason = should_open_ticket(Situation(Signal.UNSURE, unsure_in_a_row=1), service.rules_for(visitor))
        if reason is not None:
            outcome = service.open_ticket(sender, visitor, reason)
            assert outcome.ticket is not None and outcome.created
        timings.append((time.perf_counter() - started) * 1000)
        if index % 10 == 0 and reason is not None:  # a retried turn finds the ticket, never a second one
            again = service.open_ticket(sender, visitor, reason)
            assert again.ticket is not None and not again.created
    store.dispose()
    return timings


def report(name: str, timings: List[float]) -> None:
    ordered = sorted(timings)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    print(f"{name:<11} {len(timings)} turns: p50 {statistics.median(timings):.1f} ms, p95 {p95:.1f} ms, max {ordered[-1]:.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        report("SQLite", measure(f"sqlite:///{folder}/bench.db", args.turns))
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    from sqlalchemy import create_engine, text

    try:
        engine = create_engine(args.postgres, future=True)
        with engine.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as error:  # noqa: BLE001 (reported, the SQLite figure stands)
        print(f"PostgreSQL   skipped: {error.__class__.__name__}")
        return 0
    try:
        report("PostgreSQL", measure(f"{args.postgres}?options=-csearch_path%3D{schema}", args.turns))
    except StoreError as error:
        print(f"PostgreSQL   failed: {error}")
    finally:
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    return 0


if __name__ == "__main__":
    sys.exit(main())
