"""The one Answerer per action-server process, made on first use (no I/O at import)."""
from __future__ import annotations

from functools import lru_cache

from bot.dialogue.answering import Answerer
from bot.settings import get_settings


@lru_cache(maxsize=1)
def answerer() -> Answerer:
    """The process's Answerer (knowledge base and search index)."""
    return Answerer(get_settings())
