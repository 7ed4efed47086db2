"""Handoff tickets: one open per conversation (enforced by the database), state changes as events."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

import bot.store.tickets as tickets_module
from bot.protocol import ClosedHow
from bot.settings import PROJECT_ROOT
from bot.store.customers import CustomerData, upsert_customer
from bot.store.database import Store, StoreIntegrityError
from bot.store.messages import NewMessage, conversation_messages
from bot.store.models import Ticket
from bot.store.tickets import (
    TicketNotFoundError,
    TicketRequest,
    TicketStateError,
    assign_ticket,
    close_ticket,
    get_ticket,
    open_ticket,
    open_ticket_for_conversation,
    record_agent_reply,
    ticket_events,
    tickets_for_conversation,
    tickets_for_customer,
)

NOW = datetime(2026, 11, 18, 10, 0, tzinfo=timezone.utc)
HANDOVER = {
    "transcript": [{"from": "visitor", "text": "I was charged twice", "at": "2026-11-18T09:59:00+00:00"}],
    "customer": None,
    "reason": "requested",
    "intents": [{"name": "faq/double-charge", "confidence": 0.41}],
    "articles": ["double-charge"],
}


def request(conversation_id: str = "conv-1", **overrides: Any) -> TicketRequest:
    fields: dict = dict(
        conversation_id=conversation_id,
        plan="anonymous",
        priority="normal",
        reason="requested",
        sla_due_at=NOW + timedelta(days=2),
        handover=HANDOVER,
    )
    fields.update(overrides)
    return TicketRequest(**fields)


def a_customer(store: Store, email: str = "premium@demo.example") -> int:
    data = CustomerData(
        email=email, name="Priya", plan="premium", billing_period="monthly",
        price=Decimal("15.99"), currency="USD", status="active",
    )
    return upsert_customer(store, data, NOW).id


def test_opening_a_ticket_stores_what_the_agent_needs(store: Store) -> None:
    customer_id = a_customer(store)
    opened = open_ticket(
        store,
        request(customer_id=customer_id, plan="premium", priority="high", sla_due_at=NOW + timedelta(minutes=5)),
        NOW,
    )
    ticket = opened.ticket
    assert opened.created
    assert ticket.number == f"#{ticket.id}"
    assert (ticket.status, ticket.plan, ticket.priority, ticket.reason) == ("open", "premium", "high", "requested")
    assert ticket.customer_id == customer_id
    assert ticket.assignee is None and ticket.first_agent_reply_at is None and ticket.resolved_at is None
    assert get_ticket(store, ticket.id) == ticket
    assert ticket.handover == HANDOVER


def test_times_come_back_timezone_aware_in_utc(store: Store) -> None:
    paris = timezone(timedelta(hours=1))
    ticket = open_ticket(store, request(sla_due_at=NOW.astimezone(paris) + timedelta(minutes=5)), NOW).ticket
    stored = get_ticket(store, ticket.id)
    assert stored is not None
    assert stored.created_at == NOW and stored.created_at.utcoffset() == timedelta(0)
    assert stored.sla_due_at == NOW + timedelta(minutes=5) and stored.sla_due_at.tzinfo == timezone.utc
    assert stored.sla_due_at > datetime(2000, 1, 1, tzinfo=timezone.utc)


def test_a_conversation_never_has_two_open_tickets(store: Store) -> None:
    first = open_ticket(store, request(reason="requested"), NOW)
    again = open_ticket(store, request(reason="low_confidence"), NOW + timedelta(minutes=1))
    assert first.created and not again.created
    assert again.ticket == first.ticket
    assert len(tickets_for_conversation(store, "conv-1")) == 1
    assert [e.kind for e in ticket_events(store, first.ticket.id)] == ["opened"]


def test_the_database_refuses_a_second_open_ticket_even_when_code_skips_the_check(store: Store) -> None:
    open_ticket(store, request(), NOW)
    with store.session() as session:
        session.add(
            Ticket(
                conversation_id="conv-1", plan="free", priority="normal", reason="requested", status="assigned",
                created_at=NOW, sla_due_at=NOW, handover={},
            )
        )
        with pytest.raises(IntegrityError):
            session.commit()


def test_a_ticket_opened_by_a_concurrent_request_is_returned_not_duplicated(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    existing = open_ticket(store, request(), NOW).ticket
    real_open_row = tickets_module._open_row
    calls = []

    def miss_once(session: Any, conversation_id: str) -> Any:
        # The first look misses, as if the other request committed just after it.
        calls.append(conversation_id)
        return None if len(calls) == 1 else real_open_row(session, conversation_id)

    monkeypatch.setattr(tickets_module, "_open_row", miss_once)
    opened = open_ticket(store, request(), NOW)
    assert not opened.created
    assert opened.ticket.id == existing.id
    assert len(tickets_for_conversation(store, "conv-1")) == 1


RACER = """
import json, sys
from datetime import datetime, timedelta, timezone
from bot.store.database import Store, migrate
from bot.store.tickets import TicketRequest, open_ticket
now = datetime(2026, 11, 18, 10, 0, tzinfo=timezone.utc)
request = TicketRequest(conversation_id="raced", plan="free", priority="normal", reason="requested",
                        sla_due_at=now + timedelta(days=2))
migrate(sys.argv[1])  # as every process does at start-up
opened = open_ticket(Store(sys.argv[1]), request, now)
print(json.dumps({"id": opened.ticket.id, "created": opened.created}))
"""


def test_processes_racing_on_a_fresh_database_open_exactly_one_ticket(database_url: str) -> None:
    # Each process also migrates the still-empty database at its start-up, at the same moment.
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, database_url], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(4)
    ]
    results = []
    for racer in racers:
        out, err = racer.communicate(timeout=120)
        assert racer.returncode == 0, err.decode()
        results.append(json.loads(out.decode().strip().splitlines()[-1]))
    assert len({r["id"] for r in results}) == 1
    assert sorted(r["created"] for r in results) == [False, False, False, True]


def test_a_resolved_ticket_lets_the_conversation_open_a_new_one(store: Store) -> None:
    first = open_ticket(store, request(), NOW).ticket
    close_ticket(store, first.id, "agent:ann@help.example", NOW + timedelta(hours=1), how=ClosedHow.RESOLVED)
    assert open_ticket_for_conversation(store, "conv-1") is None
    second = open_ticket(store, request(reason="not_helpful"), NOW + timedelta(hours=2))
    assert second.created and second.ticket.id > first.id
    assert open_ticket_for_conversation(store, "conv-1") == second.ticket
    assert [t.id for t in tickets_for_conversation(store, "conv-1")] == [second.ticket.id, first.id]


def test_ticket_state_changes_are_recorded_as_events(store: Store) -> None:
    ticket = open_ticket(store, request(), NOW).ticket
    assigned = assign_ticket(store, ticket.id, "ann@help.example", NOW + timedelta(minutes=1)).ticket
    assert (assigned.status, assigned.assignee) == ("assigned", "ann@help.example")
    replied = record_agent_reply(store, ticket.id, "ann@help.example", NOW + timedelta(minutes=2)).ticket
    record_agent_reply(store, ticket.id, "ann@help.example", NOW + timedelta(minutes=3))
    resolved = close_ticket(
        store, ticket.id, "agent:ann@help.example", NOW + timedelta(minutes=4), how=ClosedHow.RESOLVED, note="refunded"
    ).ticket

    assert replied.first_agent_reply_at == NOW + timedelta(minutes=2)
    assert resolved.first_agent_reply_at == NOW + timedelta(minutes=2), "the first reply's time is kept once"
    assert (resolved.status, resolved.resolved_at) == ("resolved", NOW + timedelta(minutes=4))
    events = ticket_events(store, ticket.id)
    assert [(e.kind, e.actor) for e in events] == [
        ("opened", "bot"),
        ("assigned", "agent:ann@help.example"),
        ("agent_reply", "agent:ann@help.example"),
        ("agent_reply", "agent:ann@help.example"),
        ("resolved", "agent:ann@help.example"),
    ]
    assert [e.at - NOW for e in events] == [timedelta(minutes=m) for m in range(5)]
    assert events[0].detail == {"reason": "requested", "plan": "anonymous", "priority": "normal"}
    assert [e.detail["first"] for e in events if e.kind == "agent_reply"] == [True, False]
    assert events[-1].detail == {"note": "refunded"}


def test_an_agent_replying_to_an_unassigned_ticket_takes_it(store: Store) -> None:
    ticket = open_ticket(store, request(), NOW).ticket
    replied = record_agent_reply(store, ticket.id, "bo@help.example", NOW + timedelta(minutes=1)).ticket
    assert (replied.status, replied.assignee) == ("assigned", "bo@help.example")
    assert [e.kind for e in ticket_events(store, ticket.id)] == ["opened", "assigned", "agent_reply"]


def test_an_agent_replying_to_a_ticket_assigned_to_someone_else_takes_it_with_the_messages(store: Store) -> None:
    ticket = open_ticket(store, request(), NOW).ticket
    assign_ticket(store, ticket.id, "ann@help.example", NOW)
    joined = NewMessage("system", "Bo joined")
    reply = NewMessage("agent", "Bo here, let me look", author="bo@help.example")
    change = record_agent_reply(store, ticket.id, "bo@help.example", NOW + timedelta(minutes=1), reply=reply, joined=joined)
    assert (change.ticket.status, change.ticket.assignee) == ("assigned", "bo@help.example")
    assert [(m.sender, m.text) for m in change.messages] == [("system", "Bo joined"), ("agent", "Bo here, let me look")]
    assert list(change.messages) == conversation_messages(store, "conv-1")
    events = ticket_events(store, ticket.id)
    assert [(e.kind, e.actor) for e in events[-2:]] == [("assigned", "agent:bo@help.example"), ("agent_reply", "agent:bo@help.example")]
    assert events[-2].detail == {"assignee": "bo@help.example", "previous": "ann@help.example"}
    again = record_agent_reply(store, ticket.id, "bo@help.example", NOW + timedelta(minutes=2), joined=joined)
    assert again.messages == () and ticket_events(store, ticket.id)[-1].kind == "agent_reply", "no second take-over"


def test_a_ticket_can_be_reassigned_by_someone_else(store: Store) -> None:
    ticket = open_ticket(store, request(), NOW).ticket
    assign_ticket(store, ticket.id, "ann@help.example", NOW)
    moved = assign_ticket(store, ticket.id, "bo@help.example", NOW, actor="agent:lead@help.example").ticket
    assert moved.assignee == "bo@help.example"
    last = ticket_events(store, ticket.id)[-1]
    assert (last.actor, last.detail) == ("agent:lead@help.example", {"assignee": "bo@help.example", "previous": "ann@help.example"})


def test_handing_back_to_the_bot_resolves_the_ticket(store: Store) -> None:
    ticket = open_ticket(store, request(), NOW).ticket
    handed = close_ticket(
        store, ticket.id, "agent:ann@help.example", NOW + timedelta(minutes=9), how=ClosedHow.HANDED_BACK
    ).ticket
    assert (handed.status, handed.resolved_at) == ("resolved", NOW + timedelta(minutes=9))
    assert ticket_events(store, ticket.id)[-1].kind == "handed_back"
    assert open_ticket_for_conversation(store, "conv-1") is None


def test_a_resolved_ticket_cannot_change_again(store: Store) -> None:
    ticket = open_ticket(store, request(), NOW).ticket
    close_ticket(store, ticket.id, "visitor", NOW, how=ClosedHow.RESOLVED)
    for change in (
        lambda: close_ticket(store, ticket.id, "bot", NOW, how=ClosedHow.RESOLVED),
        lambda: close_ticket(store, ticket.id, "bot", NOW, how=ClosedHow.HANDED_BACK),
        lambda: assign_ticket(store, ticket.id, "ann@help.example", NOW),
        lambda: record_agent_reply(store, ticket.id, "ann@help.example", NOW),
        lambda: record_agent_reply(
            store, ticket.id, "ann@help.example", NOW, reply=NewMessage("agent", "hi", author="ann@help.example")
        ),
    ):
        with pytest.raises(TicketStateError):
            change()
    assert len(ticket_events(store, ticket.id)) == 2
    assert conversation_messages(store, "conv-1") == [], "a refused change stores none of its messages"


def test_an_unknown_ticket_number_is_reported_as_not_found(store: Store) -> None:
    open_ticket(store, request(), NOW)
    assert get_ticket(store, 999) is None
    with pytest.raises(TicketNotFoundError):
        close_ticket(store, 999, "bot", NOW, how=ClosedHow.RESOLVED)


def test_a_customers_latest_tickets_come_newest_first_and_limited(store: Store) -> None:
    customer_id = a_customer(store)
    ids = [open_ticket(store, request(f"conv-{n}", customer_id=customer_id), NOW).ticket.id for n in range(7)]
    open_ticket(store, request("someone-else"), NOW)
    assert [t.id for t in tickets_for_customer(store, customer_id)] == ids[::-1][:5]
    assert [t.id for t in tickets_for_customer(store, customer_id, limit=2)] == ids[::-1][:2]


def test_a_ticket_for_an_unknown_customer_is_refused_with_a_store_error(store: Store) -> None:
    with pytest.raises(StoreIntegrityError):
        open_ticket(store, request(customer_id=4242), NOW)
    assert open_ticket_for_conversation(store, "conv-1") is None


def test_records_are_plain_copies_that_outlive_their_session(store: Store) -> None:
    ticket = open_ticket(store, request(), NOW).ticket
    ticket.handover["articles"].append("tampered")
    assert get_ticket(store, ticket.id).handover == HANDOVER  # type: ignore[union-attr]
    with pytest.raises(AttributeError):
        ticket.status = "resolved"  # type: ignore[misc]


@pytest.mark.parametrize(
    "overrides, problem",
    [
        ({"priority": "urgent"}, "priority"),
        ({"reason": "bored"}, "reason"),
        ({"sla_due_at": datetime(2026, 11, 18, 10, 0)}, "timezone-aware"),
        ({"conversation_id": " "}, "conversation_id"),
        ({"handover": {"when": NOW}}, "JSON"),
        ({"actor": "agent:"}, "actor"),
    ],
)
def test_an_invalid_request_is_refused_before_reaching_the_database(overrides: dict, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        request(**overrides)
