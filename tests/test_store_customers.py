"""Customers: looked up by number or e-mail, saved in place by e-mail."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from bot.store.customers import CustomerData, all_customers, find_customer, upsert_customer
from bot.store.database import Store

NOW = datetime(2026, 11, 18, 10, 0, tzinfo=timezone.utc)


def data(**overrides: Any) -> CustomerData:
    fields: dict = dict(
        email="standard@demo.example", name="Sam Standard", plan="standard", billing_period="monthly",
        price=Decimal("9.99"), currency="USD", status="active",
        renews_at=NOW + timedelta(days=5), trial_ends_at=NOW + timedelta(days=5),
    )
    fields.update(overrides)
    return CustomerData(**fields)


def test_customer_found_by_email_case_insensitively(store: Store) -> None:
    saved = upsert_customer(store, data(email="  Sam.Standard@Demo.Example "), NOW)
    assert saved.email == "sam.standard@demo.example"
    assert find_customer(store, "SAM.STANDARD@demo.example") == saved
    assert find_customer(store, " sam.standard@DEMO.example ") == saved


def test_customer_found_by_number(store: Store) -> None:
    saved = upsert_customer(store, data(), NOW)
    assert find_customer(store, str(saved.id)) == saved


def test_nobody_is_found_for_an_unknown_key(store: Store) -> None:
    upsert_customer(store, data(), NOW)
    for key in ("nobody@demo.example", "999", "", "   "):
        assert find_customer(store, key) is None


def test_saving_a_customer_again_updates_it_in_place(store: Store) -> None:
    first = upsert_customer(store, data(), NOW)
    later = NOW + timedelta(days=30)
    second = upsert_customer(store, data(email="STANDARD@demo.example", plan="premium", price="15.99"), later)
    assert second.id == first.id
    assert (second.plan, second.price) == ("premium", Decimal("15.99"))
    assert second.created_at == first.created_at == NOW
    assert all_customers(store) == [second]


def test_a_customer_keeps_exact_prices_and_aware_dates(store: Store) -> None:
    saved = upsert_customer(store, data(price=Decimal("99.90"), billing_period="annual"), NOW)
    stored = find_customer(store, saved.email)
    assert stored is not None
    assert stored.price == Decimal("99.90") and str(stored.price) == "99.90"
    assert stored.renews_at == NOW + timedelta(days=5) and stored.renews_at.utcoffset() == timedelta(0)
    assert stored.in_trial(NOW) and not stored.in_trial(NOW + timedelta(days=6))


def test_customers_are_listed_in_the_order_they_were_created(store: Store) -> None:
    emails = ["b@demo.example", "a@demo.example", "c@demo.example"]
    for email in emails:
        upsert_customer(store, data(email=email), NOW)
    assert [c.email for c in all_customers(store)] == emails


@pytest.mark.parametrize(
    "overrides, problem",
    [
        ({"email": "not-an-address"}, "e-mail"),
        ({"status": "frozen"}, "status"),
        ({"billing_period": "weekly"}, "billing_period"),
        ({"billing_period": None}, "needs a billing_period"),
        ({"price": Decimal("-1")}, "price"),
        ({"price": Decimal("9.999")}, "at most 2 decimals"),
        ({"currency": "usd"}, "currency"),
        ({"renews_at": datetime(2026, 12, 1)}, "timezone-aware"),
        ({"plan": ""}, "plan"),
    ],
)
def test_invalid_customer_data_is_refused_before_reaching_the_database(overrides: dict, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        data(**overrides)


def test_a_free_customer_needs_no_billing_period() -> None:
    free = data(plan="free", billing_period=None, price=Decimal("0"), trial_ends_at=None, renews_at=None)
    assert free.price == Decimal("0.00")
    assert replace(free, name="Other").email == free.email
