"""Whether a visitor is online now: a widget of the conversation has its socket connected, on any gateway.

Each gateway knows its own widget sockets (``joined`` when a socket confirms its conversation, ``left``
when it disconnects). A disconnect ends the conversation's presence on this gateway at once when it was
its last socket there, and the inboxes are told (``visitor_presence``), so the "online" mark follows the
visitor within moments of their closing the chat.

With one gateway that is the whole answer. With several (DESKMATE_REDIS_URL set) each gateway also keeps,
in a Redis hash per conversation (``deskmate:visitor-online:<conversation>``, field = gateway id, value =
when the entry lapses, Unix seconds), whether it has a socket of the conversation: written when its first
socket joins, deleted when its last one leaves, refreshed every ``presence_heartbeat_seconds``. The
heartbeat is only the fallback for a gateway that stopped without saying so: its entries lapse after
``presence_ttl_seconds``. When Redis cannot be reached, a conversation not seen here is "unknown" (None),
never "offline".
"""
from __future__ import annotations

import logging
import time
from typing import Any, Dict, FrozenSet, Optional, Set

logger = logging.getLogger(__name__)

KEY_PREFIX = "deskmate:visitor-online:"
# Told to every inbox when a visitor with an open ticket comes online or leaves: {"ticket", "online"}.
VISITOR_PRESENCE_EVENT = "visitor_presence"


class VisitorPresence:
    """This gateway's widget sockets by conversation, and (with ``redis_url``) every gateway's.

    ``gateway_id``: this process's id; ``ttl_seconds``: how long an entry in Redis counts unless refreshed.
    """

    def __init__(self, gateway_id: str, redis_url: str = "", ttl_seconds: float = 30.0) -> None:
        self.gateway_id = gateway_id
        self.ttl_seconds = ttl_seconds
        self._sockets: Dict[str, Set[str]] = {}  # conversation id -> its socket ids on this gateway
        self._conversation_of: Dict[str, str] = {}  # socket id -> the conversation it confirmed
        self._redis: Any = None
        if redis_url:
            from redis.asyncio import Redis

            self._redis = Redis.from_url(redis_url)

    @property
    def several_gateways(self) -> bool:
        """Whether other gateways' sockets count too (Redis is shared)."""
        return self._redis is not None

    async def joined(self, sid: str, conversation_id: str) -> bool:
        """Socket ``sid`` confirmed ``conversation_id`` (it leaves the one it had, if another). True when it
        is the conversation's first socket on this gateway (its presence begins here)."""
        previous = self._conversation_of.get(sid)
        if previous == conversation_id:
            return False
        if previous is not None:
            await self.left(sid)
        self._conversation_of[sid] = conversation_id
        sockets = self._sockets.setdefault(conversation_id, set())
        sockets.add(sid)
        if len(sockets) > 1:
            return False
        await self._publish({conversation_id})
        return True

    async def left(self, sid: str) -> Optional[str]:
        """Socket ``sid`` disconnected: the conversation whose last socket on this gateway it was (its
        presence here ends at once), else None."""
        conversation_id = self._conversation_of.pop(sid, None)
        if conversation_id is None:
            return None
        sockets = self._sockets.get(conversation_id, set())
        sockets.discard(sid)
        if sockets:
            return None
        self._sockets.pop(conversation_id, None)
        await self._withdraw({conversation_id})
        return conversation_id

    def here(self, conversation_id: str) -> bool:
        """Whether a socket of ``conversation_id`` is connected to this gateway."""
        return bool(self._sockets.get(conversation_id))

    async def gateways_of(self, conversation_id: str) -> Optional[FrozenSet[str]]:
        """The ids of the gateways that hold, or lately held, a socket of ``conversation_id``: this one's
        own knowledge alone without Redis; with Redis, every entry of the conversation's hash, lapsed or
        not (a lapsed one costs at most a needless publish). None when Redis cannot be reached."""
        if self._redis is None:
            return frozenset({self.gateway_id}) if self.here(conversation_id) else frozenset()
        from redis.exceptions import RedisError

        try:
            fields = await self._redis.hkeys(KEY_PREFIX + conversation_id)
        except (RedisError, OSError) as error:
            logger.warning("gateway: which gateways hold a visitor could not be read from Redis: %s", error)
            return None
        held = frozenset(f.decode() if isinstance(f, bytes) else str(f) for f in fields)
        return held | {self.gateway_id} if self.here(conversation_id) else held

    async def online(self, conversation_id: str) -> Optional[bool]:
        """True when a widget of ``conversation_id`` is connected to any gateway, False when none is;
        None (unknown) with several gateways when Redis cannot be reached."""
        if self.here(conversation_id):
            return True
        if self._redis is None:
            return False
        from redis.exceptions import RedisError

        try:
            entries = await self._redis.hgetall(KEY_PREFIX + conversation_id)
        except (RedisError, OSError) as error:
            logger.warning("gateway: whether a visitor is online could not be read from Redis: %s", error)
            return None
        now = time.time()
        return any(float(lapses) > now for lapses in entries.values())

    async def heartbeat(self) -> None:
        """Refresh this gateway's entries in Redis (nothing without Redis); RedisError is logged."""
        await self._publish(set(self._sockets))

    async def close(self) -> None:
        """This gateway stops: its entries go at once, and the Redis client is closed."""
        if self._redis is None:
            return
        await self._withdraw(set(self._sockets))
        self._sockets.clear()
        self._conversation_of.clear()
        await self._redis.close()

    async def _publish(self, conversations: Set[str]) -> None:
        if self._redis is None or not conversations:
            return
        from redis.exceptions import RedisError

        lapses = time.time() + self.ttl_seconds
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for conversation_id in conversations:
                    key = KEY_PREFIX + conversation_id
                    pipe.hset(key, self.gateway_id, f"{lapses:.3f}")
                    # The hash outlives its longest entry a little, then goes (a gateway that died with it).
                    pipe.expire(key, int(self.ttl_seconds) + 5)
                await pipe.execute()
        except (RedisError, OSError) as error:
            logger.warning("gateway: visitors' presence not written to Redis (the next heartbeat tries again): %s", error)

    async def _withdraw(self, conversations: Set[str]) -> None:
        if self._redis is None or not conversations:
            return
        from redis.exceptions import RedisError

        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for conversation_id in conversations:
                    pipe.hdel(KEY_PREFIX + conversation_id, self.gateway_id)
                await pipe.execute()
        except (RedisError, OSError) as error:
            logger.warning("gateway: a visitor's presence not cleared in Redis (it lapses by itself): %s", error)
