"""Rate limits at the gateway's doors, with the ``limits`` library (fixed windows; Redis or memory).

Defaults near Chatwoot's widget limits: 30 new conversations per client
address a minute, 60 messages per conversation and 60 per client address a
minute (``Settings.rate_*``). Counters live in Redis when ``redis_url`` is set,
so every gateway process shares them, else in this process. A message over a
limit is refused before it is stored (nothing accepted is ever dropped), and
the caller says how long to wait. If Redis is unreachable the limits are not
enforced (logged): rate limiting must never silence the bot.

Fixed windows, as Rack::Attack's throttles that Chatwoot's limits use: a
window starts at a key's first hit and lasts the limit's period. A visitor
may thus send up to twice the limit across a window's end, which is fine for
limits that only stop floods. Moving windows were dropped for their cost:
with ``limits`` 2.4 (the newest that fits beside Rasa 3.6's ``packaging<21``)
the memory storage re-scans every hit of the last period, on up to a hundred
timer passes a second. At 60 messages/s with the default limits that cost
2.9 ms of CPU per message against 0.8 ms for fixed windows (bench/rate_limits.py;
bench/README.md, "Rate limits: fixed windows instead of moving ones"); it grows
with the traffic.
"""
from __future__ import annotations

import logging
import math
import time
from typing import Optional

from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

from bot.settings import Settings

logger = logging.getLogger(__name__)


class RateLimitedError(Exception):
    """Over a rate limit: ``retry_after`` whole seconds until the next message is accepted (HTTP ``status``:
    429 for a visitor over their limit, 503 for a gateway holding as many messages as it may)."""

    def __init__(self, message: str, retry_after: int, status: int = 429) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status


class RateLimits:
    """The gateway's limits: new conversations per address, messages per conversation and per address."""

    def __init__(self, settings: Settings) -> None:
        self._storage = storage_from_string(settings.redis_url or "memory://")
        self._limiter = FixedWindowRateLimiter(self._storage)
        self._new_conversations = parse(settings.rate_new_conversations)
        self._per_conversation = parse(settings.rate_messages_per_conversation)
        self._per_address = parse(settings.rate_messages_per_ip)

    def _hit(self, limit: RateLimitItem, *keys: str, count: bool = True) -> Optional[int]:
        """None when allowed (and, with ``count``, counted), else the seconds to wait."""
        try:
            if (self._limiter.hit if count else self._limiter.test)(limit, *keys):
                return None
            reset_at, _remaining = self._limiter.get_window_stats(limit, *keys)
        except Exception as error:  # noqa: BLE001 (Redis down: serve, and say so in the log)
            logger.error("rate limits: not enforced, their storage failed: %s", error)
            return None
        return max(1, math.ceil(reset_at - time.time()))

    def new_conversation(self, address: str) -> None:
        """Count a new conversation from ``address``; raises RateLimitedError over the limit."""
        wait = self._hit(self._new_conversations, "new-conversation", address)
        if wait is not None:
            raise RateLimitedError(
                f"Too many new conversations from your connection. Please wait {wait} s and try again.", wait
            )

    def message(self, conversation_id: str, address: Optional[str]) -> None:
        """Count a message of ``conversation_id`` (and of ``address``, for widget visitors); raises RateLimitedError.

        A message refused by one limit is not counted by the other: a conversation over its own limit
        does not use up its address's, and a refusal by the address's limit does not use up the
        conversation's (a break-it test saw a visitor held back for a minute by messages never accepted).
        """
        wait = self._hit(self._per_conversation, "conversation", conversation_id, count=False)
        if wait is None and address is not None:
            wait = self._hit(self._per_address, "address", address)
        if wait is None:
            wait = self._hit(self._per_conversation, "conversation", conversation_id)
        if wait is not None:
            raise RateLimitedError(
                f"You're sending messages faster than I can read them. Please wait {wait} s, then send it again.", wait
            )
