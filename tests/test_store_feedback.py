"""The store keeps feedback, on SQLite and on PostgreSQL."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bot.store.database import Store, StoreUnavailableError
from bot.store.feedback import FeedbackRecord, feedback_for, record_csat, record_feedback

NOW = datetime(2026, 11, 18, 10, 0, tzinfo=timezone.utc)


def test_feedback_is_stored_per_conversation_in_order(store: Store) -> None:
    record_feedback(store, "conv-1", "double-charge", True, NOW)
    record_feedback(store, "conv-1", "refund-policy", False, NOW + timedelta(seconds=1))
    record_feedback(store, "conv-2", "invoices", True, NOW)
    rows = feedback_for(store, "conv-1")
    assert [(r.article_id, r.helpful) for r in rows] == [("double-charge", True), ("refund-policy", False)]
    assert all(r.created_at is not None for r in rows)
    assert [r.created_at for r in rows] == [NOW, NOW + timedelta(seconds=1)]


def test_feedback_comes_back_as_plain_frozen_records(store: Store) -> None:
    verdict = record_feedback(store, "conv-1", "double-charge", False, NOW)
    rating = record_csat(store, "conv-1", 4, NOW + timedelta(minutes=1))
    assert isinstance(verdict, FeedbackRecord) and isinstance(rating, FeedbackRecord)
    assert (verdict.article_id, verdict.helpful, verdict.csat) == ("double-charge", False, None)
    assert (rating.article_id, rating.helpful, rating.csat) == (None, None, 4)
    assert feedback_for(store, "conv-1") == [verdict, rating]
    with pytest.raises(AttributeError):
        verdict.helpful = True  # type: ignore[misc]


def test_an_unreachable_database_raises_a_specific_error(unreachable_store: Store) -> None:
    with pytest.raises(StoreUnavailableError):
        record_feedback(unreachable_store, "c", "a", True, NOW)
