"""The one Answerer per action-server process, made on first use (no I/O at import)."""
from __future__ import annotations

import threading
from functools import lru_cache

from bot.dialogue.answering import Answerer
from bot.settings import get_settings


@lru_cache(maxsize=1)
def answerer() -> Answerer:
    """The process's Answerer (knowledge base and search index), warming up in the background."""
    service = Answerer(get_settings())
    threading.Thread(target=service.warm_up, name="kb-warm-up", daemon=True).start()
    return service
