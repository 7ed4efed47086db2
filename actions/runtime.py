"""The per-process services of the action server, made on first use (no I/O at import)."""
from __future__ import annotations

import threading
from datetime import datetime
from functools import lru_cache

from bot.dialogue.answering import Answerer
from bot.handoff.policy import SupportPolicy
from bot.handoff.service import HandoffService, fixed_clock, utc_clock
from bot.settings import get_settings


@lru_cache(maxsize=1)
def answerer() -> Answerer:
    """The process's Answerer (knowledge base and search index), warming up in the background."""
    service = Answerer(get_settings())
    threading.Thread(target=service.warm_up, name="kb-warm-up", daemon=True).start()
    return service


@lru_cache(maxsize=1)
def handoff() -> HandoffService:
    """The process's handoff service: identity, tickets, the support policy and the clock."""
    settings = get_settings()
    clock = fixed_clock(datetime.fromisoformat(settings.fixed_now)) if settings.fixed_now else utc_clock
    return HandoffService(
        settings.resolved_database_url(),
        settings.resolved_identity_secret(),
        SupportPolicy.load(settings.support_policy_file),
        clock,
    )
