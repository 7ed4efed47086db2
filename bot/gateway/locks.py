"""One message of a conversation at a time, in the order received, across every gateway process.

In a process, an ``asyncio.Lock`` per conversation (first come, first
served); across processes, when ``redis_url`` is set, a Redis lock per
conversation on top (redis-py's, with a timeout so a killed gateway cannot
hold it forever). A conversation's messages are thus stored in order and
handed to the bot one at a time, while other conversations go on in parallel.
"""
from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Dict

KEY_PREFIX = "deskmate:conversation-lock:"


@dataclass
class _Slot:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class ConversationLocks:
    """Per-conversation mutual exclusion; ``hold_seconds`` bounds how long a dead holder blocks others."""

    def __init__(self, redis_url: str = "", hold_seconds: float = 60.0) -> None:
        self._local: Dict[str, _Slot] = {}
        self._hold_seconds = hold_seconds
        self._redis: Any = None
        if redis_url:
            from redis.asyncio import Redis

            self._redis = Redis.from_url(redis_url)

    @asynccontextmanager
    async def hold(self, conversation_id: str) -> AsyncIterator[None]:
        """Hold the conversation's lock for the duration of the ``async with`` block."""
        slot = self._local.setdefault(conversation_id, _Slot())
        slot.users += 1
        try:
            async with slot.lock:
                if self._redis is None:
                    yield
                else:
                    async with self._redis.lock(
                        KEY_PREFIX + conversation_id, timeout=self._hold_seconds, blocking_timeout=self._hold_seconds
                    ):
                        yield
        finally:
            slot.users -= 1
            if slot.users == 0:
                self._local.pop(conversation_id, None)

    async def close(self) -> None:
        """Release the Redis connection pool."""
        if self._redis is not None:
            await self._redis.close()
