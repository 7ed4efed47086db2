"""Customers: who a visitor is, and which plan they are on."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import List, Optional

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.store.database import Store, StoreIntegrityError, store_errors
from bot.store.models import BILLING_PERIODS, CUSTOMER_STATUSES, Customer

# Loose on purpose: enough to tell an e-mail address from a customer number.
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
CURRENCY_PATTERN = re.compile(r"^[A-Z]{3}$")


def normalise_email(email: str) -> str:
    """The stored form of an e-mail address: trimmed and lower-cased."""
    return email.strip().lower()


@dataclass(frozen=True)
class CustomerData:
    """What a customer record holds, without its id (input to upsert_customer).

    Raises ValueError when a field is invalid, before anything reaches the database.
    """

    email: str
    name: str
    plan: str
    billing_period: Optional[str]
    price: Decimal
    currency: str
    status: str
    renews_at: Optional[datetime] = None
    trial_ends_at: Optional[datetime] = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "email", normalise_email(self.email))
        if not EMAIL_PATTERN.match(self.email):
            raise ValueError(f"not an e-mail address: {self.email!r}")
        if not self.name.strip():
            raise ValueError(f"{self.email}: name is empty")
        if not self.plan.strip():
            raise ValueError(f"{self.email}: plan is empty")
        if self.status not in CUSTOMER_STATUSES:
            raise ValueError(f"{self.email}: status {self.status!r} is not one of {', '.join(CUSTOMER_STATUSES)}")
        if self.billing_period is not None and self.billing_period not in BILLING_PERIODS:
            raise ValueError(f"{self.email}: billing_period {self.billing_period!r} is not one of {', '.join(BILLING_PERIODS)}")
        try:
            price = Decimal(str(self.price))
        except InvalidOperation as error:
            raise ValueError(f"{self.email}: price {self.price!r} is not a number") from error
        if not price.is_finite() or price < 0 or price != price.quantize(Decimal("0.01")):
            raise ValueError(f"{self.email}: price {self.price!r} must be 0 or more with at most 2 decimals")
        object.__setattr__(self, "price", price.quantize(Decimal("0.01")))
        if price > 0 and self.billing_period is None:
            raise ValueError(f"{self.email}: a paid plan needs a billing_period")
        if not CURRENCY_PATTERN.match(self.currency):
            raise ValueError(f"{self.email}: currency {self.currency!r} must be a 3-letter code such as USD")
        for field_name in ("renews_at", "trial_ends_at"):
            value = getattr(self, field_name)
            if value is not None and value.utcoffset() is None:
                raise ValueError(f"{self.email}: {field_name} must be timezone-aware")


@dataclass(frozen=True)
class CustomerRecord:
    """A stored customer (a plain copy: no database session behind it)."""

    id: int
    email: str
    name: str
    plan: str
    billing_period: Optional[str]
    price: Decimal
    currency: str
    status: str
    renews_at: Optional[datetime]
    trial_ends_at: Optional[datetime]
    created_at: datetime

    def in_trial(self, now: datetime) -> bool:
        """Whether the customer is still in a free trial at ``now``."""
        return self.trial_ends_at is not None and now < self.trial_ends_at


def customer_record(row: Customer) -> CustomerRecord:
    """A plain, frozen copy of a customer row."""
    return CustomerRecord(
        id=row.id,
        email=row.email,
        name=row.name,
        plan=row.plan,
        billing_period=row.billing_period,
        price=row.price,
        currency=row.currency,
        status=row.status,
        renews_at=row.renews_at,
        trial_ends_at=row.trial_ends_at,
        created_at=row.created_at,
    )


def find_customer(store: Store, key: str) -> Optional[CustomerRecord]:
    """The customer whose id (digits) or e-mail address (any case) is ``key``; None when nobody matches."""
    key = key.strip()
    if not key:
        return None
    with store_errors("look up a customer"), store.session() as session:
        if key.isdigit():
            row = session.get(Customer, int(key))
        else:
            # lower() on both sides also finds rows written before e-mails were normalised.
            query = select(Customer).where(func.lower(Customer.email) == normalise_email(key))
            row = session.scalars(query).first()
        return customer_record(row) if row is not None else None


def _upsert(session: Session, data: CustomerData, now: datetime) -> Customer:
    row = session.scalars(select(Customer).where(Customer.email == data.email)).first()
    if row is None:
        row = Customer(email=data.email, created_at=now)
        session.add(row)
    row.name = data.name
    row.plan = data.plan
    row.billing_period = data.billing_period
    row.price = data.price
    row.currency = data.currency
    row.status = data.status
    row.renews_at = data.renews_at
    row.trial_ends_at = data.trial_ends_at
    session.flush()
    return row


def upsert_customer(store: Store, data: CustomerData, now: datetime) -> CustomerRecord:
    """Create the customer with ``data.email``, or update it in place; ``now`` stamps a new row."""
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    with store_errors("save a customer"):
        try:
            with store.session() as session, session.begin():
                return customer_record(_upsert(session, data, now))
        except IntegrityError as error:
            # Another process inserted the same e-mail in between: update its row instead.
            try:
                with store.session() as session, session.begin():
                    return customer_record(_upsert(session, data, now))
            except IntegrityError:
                raise StoreIntegrityError(f"customer {data.email} could not be saved: {error.orig}") from error


def all_customers(store: Store) -> List[CustomerRecord]:
    """Every customer, in the order they were created."""
    with store_errors("list customers"), store.session() as session:
        return [customer_record(row) for row in session.scalars(select(Customer).order_by(Customer.id))]
