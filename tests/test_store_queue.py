"""The agents' queue (priority first, then due time, then number), ticket counts, a customer's other tickets."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Callable, Dict

import pytest

from bot.store.customers import CustomerData, upsert_customer
from bot.store.database import StoreUnavailableError
from bot.store.tickets import (
    TicketRecord,
    TicketRequest,
    assign_ticket,
    customer_tickets_except,
    hand_back_ticket,
    open_ticket,
    queue,
    resolve_ticket,
    ticket_counts,
)
from tests.conftest import UNREACHABLE_DATABASE_URL

NOW = datetime(2026, 11, 18, 10, 0, tzinfo=timezone.utc)


def ticket(url: str, conversation_id: str, priority: str, due_in: timedelta, **overrides: Any) -> TicketRecord:
    fields: dict = dict(
        conversation_id=conversation_id,
        plan="premium" if priority == "high" else "free",
        priority=priority,
        reason="requested",
        sla_due_at=NOW + due_in,
    )
    fields.update(overrides)
    return open_ticket(url, TicketRequest(**fields), NOW).ticket


def a_customer(url: str, email: str) -> int:
    data = CustomerData(
        email=email, name="Priya", plan="premium", billing_period="monthly",
        price=Decimal("15.99"), currency="USD", status="active",
    )
    return upsert_customer(url, data, NOW).id


def test_priority_comes_first_then_due_time_then_number(database_url: str) -> None:
    normal_soon = ticket(database_url, "normal-soon", "normal", timedelta(minutes=1))
    high_later = ticket(database_url, "high-later", "high", timedelta(hours=3))
    normal_later = ticket(database_url, "normal-later", "normal", timedelta(hours=2))
    high_soon = ticket(database_url, "high-soon", "high", timedelta(minutes=5))
    normal_overdue = ticket(database_url, "normal-overdue", "normal", -timedelta(hours=1))
    normal_tie_a = ticket(database_url, "normal-tie-a", "normal", timedelta(hours=2))

    order = [t.conversation_id for t in queue(database_url, NOW)]

    assert order == [
        "high-soon", "high-later",  # a high-priority ticket due later still beats every normal one
        "normal-overdue", "normal-soon", "normal-later", "normal-tie-a",  # equal due times: lower number first
    ]
    assert normal_later.id < normal_tie_a.id
    assert {high_later.id, high_soon.id, normal_soon.id, normal_overdue.id} <= {t.id for t in queue(database_url, NOW)}


def test_due_times_compare_as_instants_whatever_their_offset(database_url: str) -> None:
    tokyo = timezone(timedelta(hours=9))
    ticket(database_url, "later", "normal", timedelta(minutes=30))
    # 10:20 UTC written as 19:20 in Tokyo: earlier, though its local text sorts later.
    ticket(database_url, "sooner", "normal", timedelta(0), sla_due_at=(NOW + timedelta(minutes=20)).astimezone(tokyo))
    assert [t.conversation_id for t in queue(database_url, NOW)] == ["sooner", "later"]


def test_the_queue_holds_open_and_assigned_tickets_only(database_url: str) -> None:
    waiting = ticket(database_url, "waiting", "normal", timedelta(hours=1))
    taken = ticket(database_url, "taken", "normal", timedelta(hours=2))
    done = ticket(database_url, "done", "high", timedelta(minutes=1))
    handed = ticket(database_url, "handed", "high", timedelta(minutes=2))
    assign_ticket(database_url, taken.id, "ann@help.example", NOW)
    resolve_ticket(database_url, done.id, "agent:ann@help.example", NOW)
    hand_back_ticket(database_url, handed.id, "agent:ann@help.example", NOW)

    listed = queue(database_url, NOW)
    assert [t.id for t in listed] == [waiting.id, taken.id]
    assert [t.status for t in listed] == ["open", "assigned"]


def test_an_empty_store_has_an_empty_queue_and_zero_counts(database_url: str) -> None:
    assert queue(database_url, NOW) == []
    assert ticket_counts(database_url) == {"open": 0, "assigned": 0, "resolved": 0}


def test_counts_cover_every_state(database_url: str) -> None:
    ids = [ticket(database_url, f"c{n}", "normal", timedelta(hours=1)).id for n in range(6)]
    assign_ticket(database_url, ids[0], "ann@help.example", NOW)
    assign_ticket(database_url, ids[1], "bo@help.example", NOW)
    resolve_ticket(database_url, ids[2], "bot", NOW)
    counts = ticket_counts(database_url)
    assert counts == {"open": 3, "assigned": 2, "resolved": 1}
    assert list(counts) == ["open", "assigned", "resolved"]


def test_the_queue_needs_an_aware_clock(database_url: str) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        queue(database_url, datetime(2026, 11, 18, 10, 0))


def test_a_customers_other_tickets_come_newest_first_without_this_one(database_url: str) -> None:
    customer = a_customer(database_url, "premium@demo.example")
    other = a_customer(database_url, "free@demo.example")
    ids = [ticket(database_url, f"c{n}", "high", timedelta(minutes=5), customer_id=customer).id for n in range(13)]
    ticket(database_url, "someone-else", "normal", timedelta(hours=1), customer_id=other)
    ticket(database_url, "anonymous", "normal", timedelta(hours=1))
    current = ids[6]

    others = customer_tickets_except(database_url, customer, current)
    assert [t.id for t in others] == [i for i in reversed(ids) if i != current][:10]
    assert [t.id for t in customer_tickets_except(database_url, customer, ids[-1], limit=3)] == ids[-2:-5:-1]
    assert customer_tickets_except(database_url, other, 10_000) != []
    assert customer_tickets_except(database_url, 4242, 1) == []


CALLS: Dict[str, Callable[[str], object]] = {
    "queue": lambda url: queue(url, NOW),
    "ticket_counts": ticket_counts,
    "customer_tickets_except": lambda url: customer_tickets_except(url, 1, 1),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_an_unreachable_database_raises_store_unavailable(name: str) -> None:
    with pytest.raises(StoreUnavailableError):
        CALLS[name](UNREACHABLE_DATABASE_URL)
