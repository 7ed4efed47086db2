"""A lead manages the team's accounts from the console: role, disable or enable, a new temporary password.

The same rules as the command line's `staff` commands (bot/store/staff.py,
``change_account``: among them, the team always keeps at least one enabled
lead, checked in the change's own transaction with the lead rows locked),
plus one a console needs: a lead never changes their own account here (they
would lock themselves out mid-click; `python -m bot staff` can).

Every change that takes rights away (demotion, disabling, a new password)
ends the account's sessions at once, as the command line does.
"""
from __future__ import annotations

import logging
import secrets
from datetime import datetime
from typing import Optional

from bot.store.customers import normalise_email
from bot.store.database import Store
from bot.store.models import STAFF_ROLES, Staff
from bot.store.staff import (  # noqa: F401 (StaffChangeRefusedError and LastLeadError: callers catch them from here)
    LastLeadError,
    StaffChangeRefusedError,
    StaffRecord,
    change_account,
    hash_password,
)

logger = logging.getLogger(__name__)

# 16 URL-safe characters (96 bits): above the 10-character minimum, typed once and then changed.
TEMPORARY_PASSWORD_BYTES = 12


def temporary_password() -> str:
    """A new random password to hand to a person once (16 characters)."""
    return secrets.token_urlsafe(TEMPORARY_PASSWORD_BYTES)


def change_staff(
    store: Store, actor: str, email: str, now: datetime, *, role: Optional[str] = None,
    disabled: Optional[bool] = None, password: Optional[str] = None,
) -> StaffRecord:
    """Change ``email``'s account as lead ``actor`` asks: its role, whether it is disabled, its password.

    Ends the account's sessions when the change takes rights away or sets a
    password. Raises StaffChangeRefusedError (one's own account; LastLeadError
    for the last enabled lead), StaffNotFoundError, ValueError (an unknown
    role, a short password), StoreError when the database fails.
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

    def apply(row: Staff) -> Optional[str]:
        """The change; why the account's sessions end (None: they stay)."""
        end_reason = None
        if role is not None and role != row.role:
            end_reason = "role changed"
            row.role = role
        if disabled is not None:
            if disabled:
                end_reason = "account disabled"
            row.disabled = disabled
        if password_hash is not None:
            row.password_hash = password_hash
            end_reason = end_reason or "password changed"
        return end_reason

    record = change_account(store, email, "change a staff account", apply, now)
    logger.info("lead %s changed staff account %s (role=%s disabled=%s password=%s)",
                actor, email, role, disabled, password is not None)
    return record
