"""The demo customers: five of them, consistent with the demo tenant's plans, seeded idempotently."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from bot.handoff.policy import SupportPolicy
from bot.settings import PROJECT_ROOT
from bot.store.customers import all_customers, find_customer
from bot.store.database import Store
from bot.store.seed import SeedFileError, load_demo_customers, seed_demo_customers

DEMO_FILE = PROJECT_ROOT / "kb" / "demo_customers.yml"
NOW = datetime(2026, 11, 18, 10, 0, tzinfo=timezone.utc)


def test_seeding_twice_keeps_five_demo_customers(store: Store) -> None:
    first = seed_demo_customers(store, DEMO_FILE, NOW)
    second = seed_demo_customers(store, DEMO_FILE, NOW + timedelta(days=1))
    assert len(first) == len(second) == len(all_customers(store)) == 5
    assert [c.id for c in first] == [c.id for c in second]
    assert [c.created_at for c in second] == [NOW] * 5, "updated in place, not re-created"
    premium = find_customer(store, "premium@demo.example")
    assert premium is not None and premium.renews_at == NOW + timedelta(days=1 + 12)


def test_the_demo_customers_cover_every_case_at_the_demo_prices(store: Store) -> None:
    customers = {c.email: c for c in seed_demo_customers(store, DEMO_FILE, NOW)}
    summary = {e: (c.plan, c.billing_period, c.price, c.currency, c.status) for e, c in customers.items()}
    assert summary == {
        "free@demo.example": ("free", None, Decimal("0.00"), "USD", "active"),
        "standard@demo.example": ("standard", "monthly", Decimal("9.99"), "USD", "active"),
        "premium@demo.example": ("premium", "monthly", Decimal("15.99"), "USD", "active"),
        "paused@demo.example": ("standard", "annual", Decimal("99.90"), "USD", "paused"),
        "cancelled@demo.example": ("premium", "monthly", Decimal("15.99"), "USD", "cancelled"),
    }
    assert customers["standard@demo.example"].in_trial(NOW)
    assert not any(c.in_trial(NOW) for e, c in customers.items() if e != "standard@demo.example")
    assert customers["cancelled@demo.example"].renews_at is None


def test_every_demo_plan_has_support_rules() -> None:
    policy = SupportPolicy.load(PROJECT_ROOT / "kb" / "support_policy.yml")
    assert {c.plan for c in load_demo_customers(DEMO_FILE, NOW)} <= set(policy.plans)


@pytest.mark.parametrize(
    "text, problem",
    [
        ("customers: []\n", "non-empty list"),
        ("customers:\n  - {email: a@demo.example, name: A, plan: free, price: '0', currency: USD}\n", "missing status"),
        (
            "customers:\n  - {email: a@demo.example, name: A, plan: free, price: '0', currency: USD, status: active,"
            " renews_in_days: soon}\n",
            "renews_in_days",
        ),
        (
            "customers:\n  - {email: a@demo.example, name: A, plan: free, price: '0', currency: USD, status: gone}\n",
            "customers[0]: a@demo.example: status",
        ),
        (
            "customers:\n"
            "  - {email: a@demo.example, name: A, plan: free, price: '0', currency: USD, status: active}\n"
            "  - {email: A@demo.example, name: B, plan: free, price: '0', currency: USD, status: active}\n",
            "duplicate e-mail(s) a@demo.example",
        ),
        ("customers:\n  - {email: a@demo.example, nickname: A}\n", "unknown field(s) nickname"),
    ],
)
def test_a_broken_demo_file_is_refused_naming_the_file_and_the_entry(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "demo_customers.yml"
    path.write_text(text)
    with pytest.raises(SeedFileError) as caught:
        load_demo_customers(path, NOW)
    assert str(path) in str(caught.value) and problem in str(caught.value)


def test_a_broken_demo_file_writes_nothing(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "demo_customers.yml"
    path.write_text(
        "customers:\n"
        "  - {email: a@demo.example, name: A, plan: free, price: '0', currency: USD, status: active}\n"
        "  - {email: b@demo.example, name: B, plan: free, price: 'lots', currency: USD, status: active}\n"
    )
    with pytest.raises(SeedFileError):
        seed_demo_customers(store, path, NOW)
    assert all_customers(store) == []
