"""One message of a conversation at a time, first come first served, across every gateway process.

In one process (no Redis): an ``asyncio.Lock`` per conversation, which
serves waiters in arrival order. Across processes (``redis_url`` set): a
queue per conversation in Redis. A message takes a ticket at arrival
(``RPUSH`` is atomic, so arrivals at different gateways are ordered by when
they reached Redis) and goes ahead when its ticket is at the head. A plain
Redis lock would not do: its waiters poll, and a later message on another
gateway could overtake an earlier one. Each ticket is backed by a key that
lives ``WAITING_TTL_SECONDS`` unless its gateway refreshes it, which it does
every ``REFRESH_SECONDS`` while the ticket waits and while it holds the turn
(for at most ``hold_seconds``: a turn that hangs longer is let go); a
gateway that dies leaves a ticket whose key expires, and the next waiter
drops it, so a killed gateway blocks a conversation for about 10 s, not for
the longest a turn may take (a break-it test found a killed gateway
silencing its conversation for the whole 150 s of the old fixed expiry).

A conversation's messages are thus stored in order and handed to the bot one
at a time, while other conversations go on in parallel.
"""
from __future__ import annotations

import asyncio
import logging
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Dict

from bot.store.database import StoreUnavailableError

logger = logging.getLogger(__name__)

KEY_PREFIX = "deskmate:conversation-queue:"
ALIVE_PREFIX = "deskmate:conversation-ticket:"
POLL_SECONDS = 0.02  # how often a waiting ticket looks at the head of its queue
WAITING_TTL_SECONDS = 10  # a ticket's key lives this long unless its gateway refreshes it
REFRESH_SECONDS = 2.0  # how often a gateway refreshes the key of a ticket it holds


@dataclass
class _Slot:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class ConversationLocks:
    """Per-conversation mutual exclusion in arrival order. ``hold_seconds`` (s) bounds how long one turn
    may hold a conversation across gateways (it must outlast the longest turn: the bot's time-out and the
    store's); a gateway that died holding or waiting blocks the others for about WAITING_TTL_SECONDS."""

    def __init__(self, redis_url: str = "", hold_seconds: float = 60.0) -> None:
        self._local: Dict[str, _Slot] = {}
        self._hold_seconds = hold_seconds
        self._redis: Any = None
        if redis_url:
            from redis.asyncio import Redis

            self._redis = Redis.from_url(redis_url)

    @asynccontextmanager
    async def hold(self, conversation_id: str) -> AsyncIterator[None]:
        """Hold the conversation's lock for the duration of the ``async with`` block.

        Raises StoreUnavailableError when Redis is configured and cannot be reached while the message
        waits (nothing was accepted: the visitor must send it again).
        """
        if self._redis is not None:
            async with self._queued(conversation_id):
                yield
            return
        slot = self._local.setdefault(conversation_id, _Slot())
        slot.users += 1
        try:
            async with slot.lock:
                yield
        finally:
            slot.users -= 1
            if slot.users == 0:
                self._local.pop(conversation_id, None)

    async def reachable(self) -> bool:
        """Whether Redis answers (True without Redis)."""
        if self._redis is None:
            return True
        from redis.exceptions import RedisError

        try:
            return bool(await self._redis.ping())
        except (RedisError, OSError):
            return False

    @asynccontextmanager
    async def _queued(self, conversation_id: str) -> AsyncIterator[None]:
        from redis.exceptions import RedisError

        queue, ticket = KEY_PREFIX + conversation_id, uuid.uuid4().hex
        alive = ALIVE_PREFIX + ticket
        try:
            await self._wait_turn(queue, ticket, alive)
        except (RedisError, OSError) as error:
            await asyncio.shield(self._leave(queue, ticket, alive))
            raise StoreUnavailableError(f"the conversations' queue in Redis cannot be reached: {error}") from error
        except BaseException:  # cancelled while waiting: give up the place in the queue
            await asyncio.shield(self._leave(queue, ticket, alive))
            raise
        keeper = asyncio.create_task(self._keep_alive(alive))
        try:
            yield
        finally:
            keeper.cancel()
            # Shielded: a cancelled turn must still let the next message go.
            await asyncio.shield(self._leave(queue, ticket, alive))

    async def _keep_alive(self, alive: str) -> None:
        """Refresh a held ticket's key every REFRESH_SECONDS for at most ``hold_seconds`` (then a hung turn
        is let go: the key expires and the next waiter goes ahead)."""
        from redis.exceptions import RedisError

        deadline = asyncio.get_running_loop().time() + self._hold_seconds
        while asyncio.get_running_loop().time() + REFRESH_SECONDS < deadline:
            await asyncio.sleep(REFRESH_SECONDS)
            try:
                await self._redis.set(alive, 1, ex=WAITING_TTL_SECONDS)
            except (RedisError, OSError):  # Redis is away: the turn goes on; waiters may go ahead after the TTL
                logger.warning("gateway: could not refresh a conversation's turn in Redis")

    async def _wait_turn(self, queue: str, ticket: str, alive: str) -> None:
        redis = self._redis
        async with redis.pipeline(transaction=True) as pipe:
            await pipe.set(alive, 1, ex=WAITING_TTL_SECONDS).rpush(queue, ticket).expire(
                queue, int(self._hold_seconds) * 4).execute()
        polls = 0
        while True:
            head = await redis.lindex(queue, 0)
            head = head.decode() if isinstance(head, bytes) else head
            if head == ticket:
                break
            if head is None:  # our ticket is gone (Redis restarted or flushed): queue again
                await redis.rpush(queue, ticket)
                continue
            if not await redis.exists(ALIVE_PREFIX + head):
                await redis.lrem(queue, 1, head)  # its gateway died: drop its ticket
                continue
            polls += 1
            if polls % 100 == 0:  # every 2 s: still alive, and still queued (else queue again)
                await redis.set(alive, 1, ex=WAITING_TTL_SECONDS)
                if await redis.lpos(queue, ticket) is None:
                    await redis.rpush(queue, ticket)
            await asyncio.sleep(POLL_SECONDS)
        await redis.set(alive, 1, ex=WAITING_TTL_SECONDS)  # from now on refreshed by _keep_alive

    async def _leave(self, queue: str, ticket: str, alive: str) -> None:
        from redis.exceptions import RedisError

        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                await pipe.lrem(queue, 1, ticket).delete(alive).execute()
        except (RedisError, OSError):  # its key expires; the next waiter drops the ticket
            logger.warning("gateway: could not leave a conversation's queue in Redis")

    async def close(self) -> None:
        """Release the Redis connection pool."""
        if self._redis is not None:
            await self._redis.close()
