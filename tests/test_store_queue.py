"""The agents' queue (priority first, then due time, then number) and ticket counts."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict

import pytest

from bot.protocol import ClosedHow
from bot.store.database import Store, StoreUnavailableError
from bot.store.tickets import (
    TicketRecord,
    TicketRequest,
    assign_ticket,
    close_ticket,
    open_ticket,
    queue,
    ticket_counts,
)

NOW = datetime(2026, 11, 18, 10, 0, tzinfo=timezone.utc)


def ticket(store: Store, conversation_id: str, priority: str, due_in: timedelta, **overrides: Any) -> TicketRecord:
    fields: dict = dict(
        conversation_id=conversation_id,
        plan="premium" if priority == "high" else "free",
        priority=priority,
        reason="requested",
        sla_due_at=NOW + due_in,
    )
    fields.update(overrides)
    return open_ticket(store, TicketRequest(**fields), NOW).ticket


def test_priority_comes_first_then_due_time_then_number(store: Store) -> None:
    normal_soon = ticket(store, "normal-soon", "normal", timedelta(minutes=1))
    high_later = ticket(store, "high-later", "high", timedelta(hours=3))
    normal_later = ticket(store, "normal-later", "normal", timedelta(hours=2))
    high_soon = ticket(store, "high-soon", "high", timedelta(minutes=5))
    normal_overdue = ticket(store, "normal-overdue", "normal", -timedelta(hours=1))
    normal_tie_a = ticket(store, "normal-tie-a", "normal", timedelta(hours=2))

    order = [t.conversation_id for t in queue(store, NOW)]

    assert order == [
        "high-soon", "high-later",  # a high-priority ticket due later still beats every normal one
        "normal-overdue", "normal-soon", "normal-later", "normal-tie-a",  # equal due times: lower number first
    ]
    assert normal_later.id < normal_tie_a.id
    assert {high_later.id, high_soon.id, normal_soon.id, normal_overdue.id} <= {t.id for t in queue(store, NOW)}


def test_due_times_compare_as_instants_whatever_their_offset(store: Store) -> None:
    tokyo = timezone(timedelta(hours=9))
    ticket(store, "later", "normal", timedelta(minutes=30))
    # 10:20 UTC written as 19:20 in Tokyo: earlier, though its local text sorts later.
    ticket(store, "sooner", "normal", timedelta(0), sla_due_at=(NOW + timedelta(minutes=20)).astimezone(tokyo))
    assert [t.conversation_id for t in queue(store, NOW)] == ["sooner", "later"]


def test_the_queue_holds_open_and_assigned_tickets_only(store: Store) -> None:
    waiting = ticket(store, "waiting", "normal", timedelta(hours=1))
    taken = ticket(store, "taken", "normal", timedelta(hours=2))
    done = ticket(store, "done", "high", timedelta(minutes=1))
    handed = ticket(store, "handed", "high", timedelta(minutes=2))
    assign_ticket(store, taken.id, "ann@help.example", NOW)
    close_ticket(store, done.id, "agent:ann@help.example", NOW, how=ClosedHow.RESOLVED)
    close_ticket(store, handed.id, "agent:ann@help.example", NOW, how=ClosedHow.HANDED_BACK)

    listed = queue(store, NOW)
    assert [t.id for t in listed] == [waiting.id, taken.id]
    assert [t.status for t in listed] == ["open", "assigned"]


def test_an_empty_store_has_an_empty_queue_and_zero_counts(store: Store) -> None:
    assert queue(store, NOW) == []
    assert ticket_counts(store) == {"open": 0, "assigned": 0, "resolved": 0}


def test_counts_cover_every_state(store: Store) -> None:
    ids = [ticket(store, f"c{n}", "normal", timedelta(hours=1)).id for n in range(6)]
    assign_ticket(store, ids[0], "ann@help.example", NOW)
    assign_ticket(store, ids[1], "bo@help.example", NOW)
    close_ticket(store, ids[2], "bot", NOW, how=ClosedHow.RESOLVED)
    counts = ticket_counts(store)
    assert counts == {"open": 3, "assigned": 2, "resolved": 1}
    assert list(counts) == ["open", "assigned", "resolved"]


def test_the_queue_needs_an_aware_clock(store: Store) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        queue(store, datetime(2026, 11, 18, 10, 0))


CALLS: Dict[str, Callable[[Store], object]] = {
    "queue": lambda store: queue(store, NOW),
    "ticket_counts": ticket_counts,
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_an_unreachable_database_raises_store_unavailable(name: str, unreachable_store: Store) -> None:
    with pytest.raises(StoreUnavailableError):
        CALLS[name](unreachable_store)
