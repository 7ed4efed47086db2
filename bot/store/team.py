"""Team-wide switches a lead sets (``team_settings``): e.g. two-step sign-in required for all staff."""
from __future__ import annotations

from typing import Any

from bot.store.database import Store, store_errors
from bot.store.models import TeamSetting

REQUIRE_TOTP = "require_totp"


def team_setting(store: Store, key: str, default: Any = None) -> Any:
    """The switch's value, or ``default`` when never set. Raises StoreUnavailableError."""
    with store_errors("read a team setting"), store.session() as session:
        row = session.get(TeamSetting, key)
        return row.value if row is not None else default


def set_team_setting(store: Store, key: str, value: Any) -> None:
    """Set a switch (JSON value). Raises StoreUnavailableError."""
    with store_errors("change a team setting"), store.session() as session, session.begin():
        row = session.get(TeamSetting, key)
        if row is None:
            session.add(TeamSetting(key=key, value=value))
        else:
            row.value = value
