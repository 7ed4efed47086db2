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
