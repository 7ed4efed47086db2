"""The store keeps feedback, on SQLite and on PostgreSQL."""
from __future__ import annotations

import pytest

from bot.store.database import StoreUnavailableError
from bot.store.feedback import feedback_for, record_feedback
from tests.conftest import UNREACHABLE_DATABASE_URL


def test_feedback_is_stored_per_conversation_in_order(database_url: str) -> None:
    record_feedback(database_url, "conv-1", "double-charge", True)
    record_feedback(database_url, "conv-1", "refund-policy", False)
    record_feedback(database_url, "conv-2", "invoices", True)
    rows = feedback_for(database_url, "conv-1")
    assert [(r.article_id, r.helpful) for r in rows] == [("double-charge", True), ("refund-policy", False)]
    assert all(r.created_at is not None for r in rows)


def test_an_unreachable_database_raises_a_specific_error() -> None:
    with pytest.raises(StoreUnavailableError):
        record_feedback(UNREACHABLE_DATABASE_URL, "c", "a", True)
