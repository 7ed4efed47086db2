"""A conversation's messages go one at a time, first come first served, also across gateway processes.

Two ``ConversationLocks`` on one Redis stand for two gateways; the turns
record when they start, so the test sees the order the bot would.
"""
from __future__ import annotations

import asyncio
from typing import List

import pytest

from bot.gateway.locks import ALIVE_PREFIX, KEY_PREFIX, ConversationLocks
from tests.conversation import new_sender


async def turn(locks: ConversationLocks, conversation: str, name: str, log: List[str], seconds: float) -> None:
    async with locks.hold(conversation):
        log.append(f"{name} starts")
        await asyncio.sleep(seconds)
        log.append(f"{name} ends")


@pytest.mark.parametrize("shared", ["memory", "redis"])
def test_messages_of_one_conversation_take_turns_in_arrival_order_across_gateways(shared: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("redis_url") if shared == "redis" else ""

    async def body() -> List[str]:
        gateway_a, gateway_b = ConversationLocks(url), ConversationLocks(url)
        if not url:
            gateway_b = gateway_a  # one process: both messages reach the same gateway
        conversation, log = new_sender(), []
        try:
            # 1 reaches A, then 2 reaches B while 1 is answered, then 3 reaches A: 2 must go before 3.
            first = asyncio.create_task(turn(gateway_a, conversation, "1", log, 0.3))
            await asyncio.sleep(0.05)
            second = asyncio.create_task(turn(gateway_b, conversation, "2", log, 0.1))
            await asyncio.sleep(0.05)
            third = asyncio.create_task(turn(gateway_a, conversation, "3", log, 0.1))
            other = asyncio.create_task(turn(gateway_b, new_sender(), "other conversation", log, 0.05))
            await asyncio.gather(first, second, third, other)
        finally:
            await gateway_a.close()
            if gateway_b is not gateway_a:
                await gateway_b.close()
        return log

    log = asyncio.run(body())
    ours = [entry for entry in log if not entry.startswith("other")]
    assert ours == ["1 starts", "1 ends", "2 starts", "2 ends", "3 starts", "3 ends"]
    # Another conversation does not wait for this one.
    assert log.index("other conversation ends") < log.index("1 ends")


def test_a_gateway_that_died_holding_a_conversation_blocks_it_only_until_its_ticket_expires(redis_url: str) -> None:
    import redis

    conversation = new_sender()
    sync = redis.Redis.from_url(redis_url)
    # A dead gateway's ticket at the head of the queue; its key has expired.
    sync.rpush(KEY_PREFIX + conversation, "dead-gateway-ticket")

    async def body() -> List[str]:
        locks, log = ConversationLocks(redis_url), []
        try:
            await asyncio.wait_for(turn(locks, conversation, "next", log, 0), timeout=5)
        finally:
            await locks.close()
        return log

    try:
        assert asyncio.run(body()) == ["next starts", "next ends"]
        assert sync.llen(KEY_PREFIX + conversation) == 0
        assert not sync.keys(ALIVE_PREFIX + "dead-gateway-ticket")
    finally:
        sync.delete(KEY_PREFIX + conversation)
        sync.close()


HOLDER = """
import asyncio, sys
from bot.gateway.locks import ConversationLocks

async def main() -> None:
    locks = ConversationLocks(sys.argv[1], hold_seconds=150)
    async with locks.hold(sys.argv[2]):
        print("holding", flush=True)
        await asyncio.sleep(3600)  # a turn waiting for a bot that does not answer

asyncio.run(main())
"""


def test_a_gateway_killed_while_holding_a_conversation_blocks_it_for_seconds_not_for_the_longest_turn(
    redis_url: str,
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from bot.gateway.locks import WAITING_TTL_SECONDS
    from bot.settings import PROJECT_ROOT

    conversation = new_sender()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, redis_url, conversation], cwd=PROJECT_ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        time.sleep(WAITING_TTL_SECONDS + 3)  # alive longer than a ticket's key lives: the holder refreshes it

        async def next_turn(timeout: float) -> List[str]:
            locks, log = ConversationLocks(redis_url, hold_seconds=150), []
            try:
                await asyncio.wait_for(turn(locks, conversation, "next", log, 0), timeout=timeout)
            finally:
                await locks.close()
            return log

        with pytest.raises(asyncio.TimeoutError):
            asyncio.run(next_turn(2))  # a living holder keeps its turn
        os.kill(holder.pid, signal.SIGKILL)  # the gateway dies mid-turn
        holder.wait()
        started = time.monotonic()
        assert asyncio.run(next_turn(WAITING_TTL_SECONDS + 10)) == ["next starts", "next ends"]
        # Timed outside too: a cancelled Redis call can keep wait_for from timing out. Before, the dead
        # holder's key lived hold_seconds (150 s here), and so did the block.
        assert time.monotonic() - started < WAITING_TTL_SECONDS + 10
    finally:
        if holder.poll() is None:
            holder.kill()
        import redis

        sync = redis.Redis.from_url(redis_url)
        sync.delete(KEY_PREFIX + conversation)
        sync.close()
