"""What the gateway adds to the bot's latency, and how fast an agent's reply reaches the visitor.

With `make run` running (Rasa on DESKMATE_RASA_URL, the gateway on
DESKMATE_GATEWAY_PORT), in one run on the same model:
1. the same questions sent straight to Rasa's deskmate channel and through the
   gateway's widget socket (a visitor's path), interleaved; p50 of each and
   the gateway's overhead (target: <= 15% at p50);
2. an agent's reply (POST to the inbox API) until the visitor's socket
   receives it (target: <= 300 ms at p95). Needs a staff account: the
   script makes a throw-away one in the configured store.

    .venv/bin/python bench/gateway_latency.py [--rounds 100] [--replies 100]
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import List

import aiohttp
import socketio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.rasa_client import RasaClient  # noqa: E402
from bot.settings import get_settings  # noqa: E402
from bot.store.database import Store  # noqa: E402
from tests.socket_client import socket_client  # noqa: E402  (the widget's side, also used by the tests)
from bot.store.staff import add_staff  # noqa: E402

QUESTIONS = [
    "how do i turn on subtitles", "i was charged twice", "how do i cancel", "what devices can i watch on",
    "my download expired", "can i pay with paypal", "how do i reset my password", "is there a student discount",
]


def p(values: List[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(share * len(ordered)) - 1)]


async def visitor() -> "tuple[socketio.AsyncClient, asyncio.Queue, str]":
    settings = get_settings()
    sio = socket_client()
    inbox: asyncio.Queue = asyncio.Queue()
    sio.on("bot_uttered", lambda data: inbox.put_nowait(data))
    confirmed: asyncio.Future = asyncio.get_running_loop().create_future()
    sio.on("session_confirm", lambda data: confirmed.set_result(data))
    await sio.connect(f"http://127.0.0.1:{settings.gateway_port}", transports=["websocket"])
    await sio.emit("session_request", {"session_id": None})
    return sio, inbox, await asyncio.wait_for(confirmed, 10)


async def overhead(rounds: int, fresh: bool) -> None:
    """``fresh``: a new conversation for every message on both sides; else one long conversation each."""
    settings = get_settings()
    direct: List[float] = []
    through: List[float] = []
    # The same questions in the same order, and conversations of the same
    # length on both sides: Rasa loads a conversation's whole history every turn.
    direct_sender = f"bench-{uuid.uuid4().hex}"
    async with RasaClient(settings.rasa_urls()[0], settings.resolved_rasa_token()) as rasa:
        sio, inbox, session = await visitor()
        for index in range(rounds):
            text = QUESTIONS[index % len(QUESTIONS)]
            if fresh:
                await sio.disconnect()
                sio, inbox, session = await visitor()
                direct_sender = f"bench-{uuid.uuid4().hex}"
            started = time.perf_counter()
            await rasa.send(direct_sender, text)
            direct.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            await sio.emit("user_uttered", {"message": text, "session_id": session})
            await asyncio.wait_for(inbox.get(), 30)  # the first reply is the answer
            through.append((time.perf_counter() - started) * 1000)
            await drain_rest(inbox)
        await sio.disconnect()
    d50, g50 = statistics.median(direct), statistics.median(through)
    print("a new conversation per message:" if fresh else f"one conversation of {rounds} messages on each side:")
    print(f"Rasa direct      : p50 {d50:.1f} ms, p95 {p(direct, .95):.1f} ms ({rounds} messages)")
    print(f"through gateway  : p50 {g50:.1f} ms, p95 {p(through, .95):.1f} ms (widget socket, first reply)")
    print(f"gateway overhead : {100 * (g50 - d50) / d50:+.1f}% at p50 (target <= 15%)")


async def drain_rest(inbox: asyncio.Queue) -> None:
    while True:
        try:
            await asyncio.wait_for(inbox.get(), 0.15)
        except asyncio.TimeoutError:
            return


async def agent_replies(count: int) -> None:
    settings = get_settings()
    email, password = f"bench-{uuid.uuid4().hex[:8]}@bench.example", uuid.uuid4().hex
    store = Store(settings.resolved_database_url())
    add_staff(store, email, "Bench", "agent", password, datetime.now(timezone.utc))
    store.dispose()
    base = f"http://127.0.0.1:{settings.gateway_port}"
    sio, inbox, session = await visitor()
    await sio.emit("user_uttered", {"message": "i want to talk to a human", "session_id": session})
    first = await asyncio.wait_for(inbox.get(), 30)
    ticket = first["metadata"]["deskmate"]["ticket"]
    await drain_rest(inbox)
    timings: List[float] = []
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        page = await (await http.get(f"{base}/agent/login")).text()
        csrf = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        await http.post(f"{base}/agent/login", data={"email": email, "password": password, "csrf_token": csrf})
        inbox_page = await (await http.get(f"{base}/agent")).text()
        csrf = inbox_page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
        headers = {"X-CSRF-Token": csrf}
        await http.post(f"{base}/agent/api/tickets/{ticket}/claim", headers=headers)
        await drain_rest(inbox)
        for index in range(count):
            started = time.perf_counter()
            async with http.post(f"{base}/agent/api/tickets/{ticket}/reply", json={"text": f"reply {index}"}, headers=headers):
                pass
            while True:
                message = await asyncio.wait_for(inbox.get(), 10)
                if message.get("text") == f"reply {index}":
                    break
            timings.append((time.perf_counter() - started) * 1000)
        await http.post(f"{base}/agent/api/tickets/{ticket}/resolve", headers=headers)
    await sio.disconnect()
    print(f"agent reply to visitor socket: p50 {statistics.median(timings):.1f} ms, p95 {p(timings, .95):.1f} ms "
          f"({count} replies; target p95 <= 300 ms)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--replies", type=int, default=100)
    args = parser.parse_args()
    asyncio.run(overhead(args.rounds, fresh=True))
    asyncio.run(overhead(args.rounds, fresh=False))
    asyncio.run(agent_replies(args.replies))
    return 0


if __name__ == "__main__":
    sys.exit(main())
