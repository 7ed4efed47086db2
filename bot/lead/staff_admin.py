"""A lead manages the team's accounts from the console: role, disable or enable, a new temporary password.

The same rules as the command line's `staff` commands (bot/store/staff.py),
plus the ones a console needs: a lead never changes their own account here
(they would lock themselves out mid-click; `python -m bot staff` can), and
the team always keeps at least one enabled lead, checked in the same
transaction as the change (the lead rows are locked), so two leads demoting
each other at once cannot leave nobody able to manage the team.

Every change that takes rights away (demotion, disabling, a new password)
ends the account's sessions at once, as the command line does.
"""
from __future__ import annotations

import logging
import secrets
from datetime import datetime
from typing import Optional

from sqlalchemy import select, update

from bot.store.customers import normalise_email
from bot.store.database import Store, store_errors
from bot.store.models import STAFF_ROLES, Staff, StaffSession
from bot.store.staff import StaffNotFoundError, StaffRecord, hash_password, staff_record

logger = logging.getLogger(__name__)

# 16 URL-safe characters (96 bits): above the 10-character minimum, typed once and then changed.
TEMPORARY_PASSWORD_BYTES = 12


class StaffChangeRefusedError(ValueError):
    """The change is not allowed from the console (one's own account, the last enabled lead); the message says why."""


def temporary_password() -> str:
    """A new random password to hand to a person once (16 characters)."""
    return secrets.token_urlsafe(TEMPORARY_PASSWORD_BYTES)


def change_staff(
    store: Store, actor: str, email: str, now: datetime, *, role: Optional[str] = None,
    disabled: Optional[bool] = None, password: Optional[str] = None,
) -> StaffRecord:
    """Change ``email``'s account as lead ``actor`` asks: its role, whether it is disabled, its password.

    Ends the account's sessions when the change takes rights away or sets a
    password. Raises StaffChangeRefusedError (one's own account; the last
    enabled lead), StaffNotFoundError, ValueError (an unknown role, a short
    password), StoreError when the database fails.
    """
    email = normalise_email(email)
    if email == normalise_email(actor):
        raise StaffChangeRefusedError(
            "you cannot change your own account here; ask another lead, or use `python -m bot staff` on the server"
        )
    if role is not None and role not in STAFF_ROLES:
        raise ValueError(f"role {role!r} is not one of {', '.join(STAFF_ROLES)}")
    if password is not None and len(password) < 10:
        raise ValueError("a password needs at least 10 characters")
    password_hash = hash_password(password) if password is not None else None
    with store_errors("change a staff account"), store.session() as session, session.begin():
        # Every enabled lead's row is locked first (always in id order), then the account's.
        leads = session.scalars(
            select(Staff.id).where(Staff.role == "lead", Staff.disabled.is_(False)).order_by(Staff.id).with_for_update()
        ).all()
        row = session.scalars(select(Staff).where(Staff.email == email).with_for_update()).first()
        if row is None:
            raise StaffNotFoundError(f"no staff account for {email}")
        end_reason = None
        if role is not None and role != row.role:
            end_reason = "role changed"
        if disabled:
            end_reason = "account disabled"
        if password_hash is not None:
            end_reason = end_reason or "password changed"
        stays_lead = (role or row.role) == "lead" and not (row.disabled if disabled is None else disabled)
        if row.id in leads and not stays_lead and len(leads) == 1:
            raise StaffChangeRefusedError(f"{email} is the only enabled lead: make another lead first")
        if role is not None:
            row.role = role
        if disabled is not None:
            row.disabled = disabled
        if password_hash is not None:
            row.password_hash = password_hash
        if end_reason:
            session.execute(
                update(StaffSession)
                .where(StaffSession.staff_id == row.id, StaffSession.ended_at.is_(None))
                .values(ended_at=now, end_reason=end_reason)
            )
        session.flush()
        record = staff_record(row)
    logger.info("lead %s changed staff account %s (role=%s disabled=%s password=%s)",
                actor, email, role, disabled, password is not None)
    return record
