"""Loading the demo customers (kb/demo_customers.yml) into the store."""
from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Dict, List, Optional


from bot.store.customers import CustomerData, CustomerRecord, upsert_customer
from bot.store.database import Store
from bot.yaml_files import read_yaml

FIELDS = {
    "email", "name", "plan", "billing_period", "price", "currency", "status", "renews_in_days", "trial_ends_in_days",
}
REQUIRED = ("email", "name", "plan", "price", "currency", "status")


class SeedFileError(ValueError):
    """The demo customers file is missing or invalid."""


def _offset(where: str, raw: Dict[str, Any], key: str, now: datetime) -> Optional[datetime]:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise SeedFileError(f"{where}: {key} must be a whole number of days, got {value!r}")
    return now + timedelta(days=value)


def _customer(where: str, raw: Any, now: datetime) -> CustomerData:
    if not isinstance(raw, dict):
        raise SeedFileError(f"{where}: must be a mapping of customer fields")
    unknown = set(raw) - FIELDS
    if unknown:
        raise SeedFileError(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    missing = [key for key in REQUIRED if raw.get(key) in (None, "")]
    if missing:
        raise SeedFileError(f"{where}: missing {', '.join(missing)}")
    try:
        price = Decimal(str(raw["price"]))
    except InvalidOperation as error:
        raise SeedFileError(f"{where}: price {raw['price']!r} is not a number") from error
    try:
        return CustomerData(
            email=str(raw["email"]),
            name=str(raw["name"]),
            plan=str(raw["plan"]),
            billing_period=raw.get("billing_period"),
            price=price,
            currency=str(raw["currency"]),
            status=str(raw["status"]),
            renews_at=_offset(where, raw, "renews_in_days", now),
            trial_ends_at=_offset(where, raw, "trial_ends_in_days", now),
        )
    except ValueError as error:
        if isinstance(error, SeedFileError):
            raise
        raise SeedFileError(f"{where}: {error}") from error


def load_demo_customers(path: Path, now: datetime) -> List[CustomerData]:
    """The customers described in ``path``, with dates counted from ``now``; raises SeedFileError."""
    raw = read_yaml(path, SeedFileError, "the demo customers")
    entries = raw.get("customers") if isinstance(raw, dict) else None
    if not isinstance(entries, list) or not entries:
        raise SeedFileError(f"{path}: expected a non-empty list under 'customers'")
    customers = [_customer(f"{path}: customers[{index}]", entry, now) for index, entry in enumerate(entries)]
    emails = [customer.email for customer in customers]
    duplicates = sorted({email for email in emails if emails.count(email) > 1})
    if duplicates:
        raise SeedFileError(f"{path}: duplicate e-mail(s) {', '.join(duplicates)}")
    return customers


def seed_demo_customers(store: Store, path: Path, now: datetime) -> List[CustomerRecord]:
    """Create or update the demo customers of ``path`` (matched by e-mail); running it again changes no count.

    Raises SeedFileError for a bad file (before writing anything) and
    StoreUnavailableError when the database cannot be reached.
    """
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    customers = load_demo_customers(path, now)
    return [upsert_customer(store, customer, now) for customer in customers]
