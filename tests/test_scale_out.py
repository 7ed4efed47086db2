"""Scale-out on the real services: two gateways and two Rasa servers sharing PostgreSQL and Redis.

The deployment `python -m bot run --gateways 2 --rasa-servers 2` starts, built
here with the same launcher: each Rasa server with its own action server,
Rasa's tracker store on PostgreSQL and its lock store on Redis, Deskmate's
store on PostgreSQL, the gateways joined by socket.io's Redis manager and by
the per-conversation queues in Redis. Expected: a visitor on one gateway and
an agent on the other talk live; a conversation's messages are answered in
the order they arrived, whichever gateway took them; a Rasa server killed
mid-run loses no message and silences nobody.
"""
from __future__ import annotations

import asyncio
import os
import signal
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List

import aiohttp
import pytest

from bot.launcher import BotProcesses
from bot.settings import Settings
from bot.store.database import Store, migrate
from bot.store.messages import conversation_messages
from bot.store.seed import seed_demo_customers
from bot.store.staff import add_staff
from bot.store.tickets import tickets_for_conversation
from tests.conftest import AGENT_EMAIL, AGENT_PASSWORD, BOT_CLOCK, POSTGRES_URL, free_port, postgres_schema
from tests.conversation import Widget, sign_in


TOKEN: List[str] = [""]  # the gateways' API token (var/api-token), set by ``fleet``


@pytest.fixture(scope="module")
def fleet(project_settings: Settings, trained_model: Path, redis_url: str,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dict[str, Any]]:
    with postgres_schema("scale") as schema, postgres_schema("scaletracker") as tracker_schema:
        url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
        tracker_url = f"{POSTGRES_URL}?options=-csearch_path%3D{tracker_schema}"
        migrate(url)
        store = Store(url)
        seed_demo_customers(store, project_settings.demo_customers_file, BOT_CLOCK)
        add_staff(store, AGENT_EMAIL, "Maria", "agent", AGENT_PASSWORD, BOT_CLOCK)
        folder = tmp_path_factory.mktemp("scale")
        bot = BotProcesses(
            project_settings.copy(update={"tracker_database_url": tracker_url, "redis_url": redis_url}),
            rasa_port=free_port(), action_port=free_port(), log_dir=folder / "logs",
            extra_env={"DESKMATE_DATABASE_URL": url, "DESKMATE_REDIS_URL": redis_url,
                       "DESKMATE_FIXED_NOW": BOT_CLOCK.isoformat()},
        )
        try:
            for suffix in ("", "-2"):
                action_port = free_port()
                bot.start_actions(action_port, f"actions{suffix}")
                bot.start_rasa(trained_model, free_port(), action_port, f"rasa{suffix}")
            bot.start_gateway("127.0.0.1", free_port(), name="gateway")
            bot.start_gateway("127.0.0.1", free_port(), name="gateway-2")
            bot.wait_ready()
            TOKEN[:] = [bot.settings.resolved_api_token()]
            yield {"bot": bot, "store": store, "a": bot.gateways["gateway"], "b": bot.gateways["gateway-2"]}
        finally:
            bot.stop()
            store.dispose()


# Questions the trained bot answers with an article (the dev set's kind), and those articles.
QUESTIONS = ("how do i turn on subtitles", "where can i find my invoices", "how do i reset my password")
ANSWERS = ("subtitles-audio", "invoices", "password-reset")


def payloads(messages: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    return [(m.get("metadata") or {}).get("deskmate") or {} for m in messages]


async def api_say(http: aiohttp.ClientSession, gateway: str, sender: str, text: str) -> List[Dict[str, Any]]:
    token = TOKEN[0]
    async with http.post(f"{gateway}/api/messages", json={"sender": sender, "message": text},
                         headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 200, await response.text()
        return list((await response.json())["messages"])


def test_a_visitor_on_one_gateway_hands_off_and_the_agent_on_another_replies_live(fleet: Dict[str, Any]) -> None:
    async def body() -> None:
        widget = Widget(fleet["a"])
        agent = aiohttp.ClientSession(base_url=fleet["b"], cookie_jar=aiohttp.CookieJar(unsafe=True))
        try:
            await widget.open()
            await widget.say("i want to talk to a human")
            handoff = (await widget.next("bot_uttered", timeout=60))["metadata"]["deskmate"]
            assert handoff["type"] == "handoff"
            ticket = handoff["ticket"]

            headers = {"X-CSRF-Token": await sign_in(agent)}  # type: ignore[arg-type]
            queue = await (await agent.get("/agent/api/queue")).json()
            assert ticket in [t["id"] for t in queue["tickets"]], "gateway B sees the ticket opened on A"
            assert (await agent.post(f"/agent/api/tickets/{ticket}/claim", headers=headers)).status == 200
            joined = await widget.next("bot_uttered")
            assert joined["metadata"]["deskmate"]["type"] == "agent_joined"
            reply = await agent.post(f"/agent/api/tickets/{ticket}/reply", json={"text": "Hi, Maria here"}, headers=headers)
            assert reply.status == 200
            said = await widget.next("bot_uttered")
            assert said["text"] == "Hi, Maria here", "the reply made on B reaches the visitor's socket on A, live"

            await widget.say("thanks, my card was charged twice")
            await asyncio.sleep(1)
            detail = await (await agent.get(f"/agent/api/tickets/{ticket}")).json()
            assert detail["messages"][-1]["text"] == "thanks, my card was charged twice"
        finally:
            await widget.close()
            await agent.close()

    asyncio.run(body())


def test_a_conversations_messages_are_answered_in_the_order_they_arrived_whichever_gateway_took_them(
    fleet: Dict[str, Any]
) -> None:
    questions = ["how do i turn on subtitles", "where can i find my invoices", "how do i reset my password",
                 "can i download shows", "how do i cancel", "what devices are supported"]
    sender = f"scale-{uuid.uuid4().hex}"

    async def body() -> List[List[Dict[str, Any]]]:
        async with aiohttp.ClientSession() as http:
            tasks = []
            for index, question in enumerate(questions):
                # Each message reaches the other gateway than the one before, before that one is answered.
                gateway = fleet["a"] if index % 2 == 0 else fleet["b"]
                tasks.append(asyncio.create_task(api_say(http, gateway, sender, question)))
                await asyncio.sleep(0.15)
            return list(await asyncio.gather(*tasks))

    turns = asyncio.run(body())
    stored = conversation_messages(fleet["store"], f"api:{sender}")
    assert [m.text for m in stored if m.sender == "visitor"] == questions
    # Each message's answer follows it, before the next message: one turn at a time.
    senders = [m.sender for m in stored]
    assert senders[0] == "visitor" and all(
        senders[i + 1] == "bot" for i, who in enumerate(senders[:-1]) if who == "visitor"), senders
    assert all(turn for turn in turns), "every message got an answer"


def test_a_visitors_tabs_on_two_gateways_both_get_each_answer_and_a_lone_tab_costs_redis_no_publish(
    fleet: Dict[str, Any], redis_url: str
) -> None:
    """Each answer is emitted on the visitor's own gateway alone, unless another gateway holds a tab of the
    conversation too: then it goes through Redis, and both tabs show it."""
    import json

    from redis.asyncio import Redis

    async def body() -> None:
        redis = Redis.from_url(redis_url)
        listener = redis.pubsub()
        await listener.subscribe("socketio")  # socket.io's Redis manager's channel
        lone, tab_a, tab_b = Widget(fleet["a"]), Widget(fleet["a"]), Widget(fleet["b"])
        try:
            alone = await lone.open()
            await lone.say(QUESTIONS[0])
            answer = (await lone.next("bot_uttered", timeout=60))["metadata"]["deskmate"]
            assert answer.get("article_id") == ANSWERS[0], answer

            shared = await tab_a.open()
            assert await tab_b.open(shared) == shared
            await tab_a.say(QUESTIONS[1])
            on_a = (await tab_a.next("bot_uttered", timeout=60))["metadata"]["deskmate"]
            on_b = (await tab_b.next("bot_uttered", timeout=60))["metadata"]["deskmate"]
            assert on_a.get("article_id") == on_b.get("article_id") == ANSWERS[1], (on_a, on_b)

            rooms = []
            quiet = 0  # get_message also answers None for the subscription's own confirmation
            while quiet < 3:
                message = await listener.get_message(ignore_subscribe_messages=True, timeout=0.5)
                if message is None:
                    quiet += 1
                    continue
                published = json.loads(message["data"])
                if published.get("event") == "bot_uttered":
                    rooms.append(published.get("room"))
            assert shared in rooms, "the answer to the conversation with a tab on each gateway went through Redis"
            assert alone not in rooms, "the answer to a tab alone on its gateway was emitted there, not published"
        finally:
            for widget in (lone, tab_a, tab_b):
                await widget.close()
            await listener.close()
            await redis.close()

    asyncio.run(body())


def test_a_rasa_server_killed_mid_run_loses_no_message_and_silences_nobody(fleet: Dict[str, Any]) -> None:
    bot, store = fleet["bot"], fleet["store"]
    questions = list(QUESTIONS)
    senders = [f"kill-{index}-{uuid.uuid4().hex}" for index in range(8)]

    async def visitor(http: aiohttp.ClientSession, index: int, sender: str) -> List[List[Dict[str, Any]]]:
        gateway = fleet["a"] if index % 2 == 0 else fleet["b"]
        return [await api_say(http, gateway, sender, question) for question in questions]

    async def body() -> List[List[List[Dict[str, Any]]]]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as http:
            conversations = [asyncio.create_task(visitor(http, i, s)) for i, s in enumerate(senders)]
            await asyncio.sleep(3)  # mid-run: turns are being answered by both servers
            os.killpg(bot.processes["rasa-2"].pid, signal.SIGKILL)
            return list(await asyncio.gather(*conversations))

    try:
        results = asyncio.run(body())
    finally:
        if bot.processes["rasa-2"].poll() is None:
            os.killpg(bot.processes["rasa-2"].pid, signal.SIGKILL)
        bot.processes["rasa-2"].wait(timeout=30)
    for sender, turns in zip(senders, results):
        conversation = f"api:{sender}"
        assert [m.text for m in conversation_messages(store, conversation) if m.sender == "visitor"] == questions
        kinds = [p.get("type") for turn in turns for p in payloads(turn)]
        assert "handoff" not in kinds and tickets_for_conversation(store, conversation) == [], (sender, kinds)
        texts = " ".join(m.get("text") or "" for turn in turns for m in turn)
        assert "isn't answering" not in texts and "send it again" not in texts, (sender, texts)
        answers = [[p.get("article_id") for p in payloads(turn) if p.get("type") == "article"] for turn in turns]
        assert answers == [[a] for a in ANSWERS], (sender, kinds)
