"""The store keeps what visitors said of the help they got, on SQLite and on PostgreSQL: once per answer,
once per ticket, and never for an answer or a rating request that does not exist."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List

import pytest

from bot.store.database import Store, StoreUnavailableError
from bot.store.feedback import FeedbackRecord, feedback_for, record_csat, record_feedback
from bot.store.messages import NewMessage, record_messages
from bot.store.tickets import TicketRequest, close_ticket, open_ticket

NOW = datetime(2026, 11, 18, 10, 0, tzinfo=timezone.utc)


def deskmate(**payload: Any) -> Dict[str, Any]:
    return {"quick_replies": [], "metadata": {"deskmate": payload}}


def answer(store: Store, conversation: str, article: str, at: datetime = NOW) -> None:
    """The bot answered ``article`` in ``conversation`` (as the gateway stores it)."""
    record_messages(store, conversation, [
        NewMessage("visitor", f"a question about {article}"),
        NewMessage("bot", "the answer", deskmate(type="article", article_id=article, title=article)),
    ], at)


def asked_to_rate(store: Store, conversation: str) -> int:
    """A ticket of ``conversation`` resolved, and the bot's request to rate it (as the desk stores them)."""
    ticket = open_ticket(store, TicketRequest(conversation, "free", "normal", "requested", NOW), NOW).ticket
    close_ticket(store, ticket.id, "agent:sam@support.example", NOW)
    record_messages(store, conversation, [NewMessage("bot", "How did we do?", deskmate(type="rating_request", ticket=ticket.id))], NOW)
    return ticket.id


def test_verdicts_are_stored_per_conversation_in_order(store: Store) -> None:
    answer(store, "conv-1", "double-charge")
    answer(store, "conv-1", "refund-policy")
    answer(store, "conv-2", "invoices")
    record_feedback(store, "conv-1", "double-charge", True, NOW)
    record_feedback(store, "conv-1", "refund-policy", False, NOW + timedelta(seconds=1))
    record_feedback(store, "conv-2", "invoices", True, NOW)
    rows = feedback_for(store, "conv-1")
    assert [(r.article_id, r.helpful) for r in rows] == [("double-charge", True), ("refund-policy", False)]
    assert [r.created_at for r in rows] == [NOW, NOW + timedelta(seconds=1)]


def test_a_verdict_counts_only_for_an_article_answered_in_that_conversation(store: Store) -> None:
    answer(store, "conv-1", "invoices")
    answer(store, "conv-2", "refund-policy")
    assert record_feedback(store, "conv-1", "refund-policy", False, NOW) is None, "answered elsewhere"
    assert record_feedback(store, "conv-1", "no-such-article", False, NOW) is None
    assert record_feedback(store, "conv-1", None, False, NOW) is None
    assert record_feedback(store, "conv-3", "invoices", True, NOW) is None, "a conversation with no answer"
    assert feedback_for(store, "conv-1") == []


def test_one_verdict_per_answer_and_a_later_click_changes_it(store: Store) -> None:
    answer(store, "conv-1", "invoices")
    for _ in range(3):
        record_feedback(store, "conv-1", "invoices", True, NOW)
    changed = record_feedback(store, "conv-1", "invoices", False, NOW + timedelta(seconds=5))
    assert [(r.helpful, r.created_at) for r in feedback_for(store, "conv-1")] == [(False, NOW + timedelta(seconds=5))]
    # Asked and answered again later in the conversation: a new answer, a verdict of its own.
    answer(store, "conv-1", "invoices", NOW + timedelta(minutes=1))
    record_feedback(store, "conv-1", "invoices", True, NOW + timedelta(minutes=2))
    rows = feedback_for(store, "conv-1")
    assert [r.helpful for r in rows] == [False, True] and rows[0].answer_message_id == changed.answer_message_id


def test_two_tabs_clicking_at_once_store_one_verdict(store: Store) -> None:
    answer(store, "conv-1", "invoices")
    errors: List[BaseException] = []

    def click() -> None:
        try:
            record_feedback(store, "conv-1", "invoices", True, NOW)
        except BaseException as error:  # noqa: BLE001 (collected and asserted below)
            errors.append(error)

    threads = [threading.Thread(target=click) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(feedback_for(store, "conv-1")) == 1


def test_a_rating_counts_only_when_the_bot_asked_once_per_ticket(store: Store) -> None:
    assert record_csat(store, "conv-1", 1, 1, NOW) is None, "never asked"
    ticket = asked_to_rate(store, "conv-1")
    assert record_csat(store, "conv-1", ticket + 1, 1, NOW) is None, "another ticket"
    assert record_csat(store, "conv-2", ticket, 1, NOW) is None, "another conversation"
    for stars in (1, 1, 1, 1, 4):
        record_csat(store, "conv-1", ticket, stars, NOW)
    assert [(r.csat, r.ticket_id) for r in feedback_for(store, "conv-1")] == [(4, ticket)]
    with pytest.raises(ValueError):
        record_csat(store, "conv-1", ticket, 6, NOW)


def test_a_reopened_ticket_is_not_rated_until_it_is_resolved_again(store: Store) -> None:
    from bot.store.agent_queue import reopen_ticket

    ticket = asked_to_rate(store, "conv-1")
    reopen_ticket(store, ticket, "sam@support.example", NOW + timedelta(minutes=1))
    # The old request's stars are still in the visitor's chat: a click on them is not a rating of open work.
    assert record_csat(store, "conv-1", ticket, 2, NOW + timedelta(minutes=2)) is None
    assert feedback_for(store, "conv-1") == []
    close_ticket(store, ticket, "agent:sam@support.example", NOW + timedelta(minutes=3))
    assert record_csat(store, "conv-1", ticket, 5, NOW + timedelta(minutes=4)) is not None


def test_feedback_comes_back_as_plain_frozen_records(store: Store) -> None:
    answer(store, "conv-1", "double-charge")
    ticket = asked_to_rate(store, "conv-1")
    verdict = record_feedback(store, "conv-1", "double-charge", False, NOW)
    rating = record_csat(store, "conv-1", ticket, 4, NOW + timedelta(minutes=1))
    assert isinstance(verdict, FeedbackRecord) and isinstance(rating, FeedbackRecord)
    assert (verdict.article_id, verdict.helpful, verdict.csat) == ("double-charge", False, None)
    assert (rating.article_id, rating.helpful, rating.csat) == (None, None, 4)
    assert feedback_for(store, "conv-1") == [verdict, rating]
    with pytest.raises(AttributeError):
        verdict.helpful = True  # type: ignore[misc]


def test_an_unreachable_database_raises_a_specific_error(unreachable_store: Store) -> None:
    with pytest.raises(StoreUnavailableError):
        record_feedback(unreachable_store, "c", "a", True, NOW)
