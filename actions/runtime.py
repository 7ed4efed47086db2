"""The per-process services of the action server, made on first use (no I/O at import)."""
from __future__ import annotations

import threading
from functools import lru_cache

from bot.clock import clock_for
from bot.dialogue.answering import Answerer
from bot.handoff.policy import SupportPolicy
from bot.handoff.service import HandoffService
from bot.identity import BOT_AUDIENCE
from bot.settings import get_settings
from bot.store.database import Store


@lru_cache(maxsize=1)
def answerer() -> Answerer:
    """The process's Answerer (knowledge base and search index), warming up in the background."""
    service = Answerer(get_settings())
    threading.Thread(target=service.warm_up, name="kb-warm-up", daemon=True).start()
    return service


@lru_cache(maxsize=1)
def store() -> Store:
    """The process's store (one engine and pool; the schema was migrated at start-up)."""
    return Store(get_settings().resolved_database_url())


@lru_cache(maxsize=1)
def handoff() -> HandoffService:
    """The process's handoff service: identity, tickets, the support policy and the clock."""
    settings = get_settings()
    return HandoffService(
        store(), settings.resolved_identity_secret(), SupportPolicy.load(settings.support_policy_file),
        clock_for(settings.fixed_now),
        # The gateway's own tokens for the bot (bot/identity.py), besides the website's (direct callers).
        token_audiences=(BOT_AUDIENCE,),
    )
