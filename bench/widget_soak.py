"""200 widget connections on one gateway for 60 s (loopback only): no message lost, none out of order.

With `make run` running. Each simulated visitor opens a socket.io session,
then, until the time is up, sends a numbered question, waits for the bot's
answer and pauses 10 to 20 seconds, as people do. At the end every visitor must have had an
answer to every message, and the gateway's store must hold each visitor's
messages exactly once and in the order sent. Bounded in count and time.

    .venv/bin/python bench/widget_soak.py [--clients 200] [--seconds 60]
"""
from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import List


sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.settings import get_settings  # noqa: E402
from bot.store.database import Store  # noqa: E402
from tests.socket_client import socket_client  # noqa: E402  (the widget's side, also used by the tests)
from bot.store.messages import conversation_messages  # noqa: E402

QUESTIONS = ["how do i turn on subtitles", "can i pay with paypal", "how do i cancel", "my download expired"]


@dataclass
class Visitor:
    session: str = ""
    sent: List[str] = field(default_factory=list)
    answered: int = 0
    latencies: List[float] = field(default_factory=list)
    errors: List[str] = field(default_factory=list)


async def run_visitor(number: int, base: str, deadline: float, visitor: Visitor) -> None:
    sio = socket_client()
    replies: asyncio.Queue = asyncio.Queue()
    confirmed: asyncio.Future = asyncio.get_running_loop().create_future()
    sio.on("bot_uttered", lambda data: replies.put_nowait(data))
    sio.on("session_confirm", lambda data: confirmed.done() or confirmed.set_result(data))
    try:
        await sio.connect(base, transports=["websocket"])
        await sio.emit("session_request", {"session_id": None})
        visitor.session = await asyncio.wait_for(confirmed, 20)
        await asyncio.sleep(random.uniform(0, 5))
        sequence = 0
        while time.monotonic() < deadline:
            text = f"#{sequence} {QUESTIONS[(number + sequence) % len(QUESTIONS)]}"
            while not replies.empty():  # the rest of the previous turn ("Was this helpful?")
                replies.get_nowait()
            visitor.sent.append(text)
            started = time.perf_counter()
            await sio.emit("user_uttered", {"message": text, "session_id": visitor.session})
            try:
                await asyncio.wait_for(replies.get(), 30)
                visitor.answered += 1
                visitor.latencies.append((time.perf_counter() - started) * 1000)
            except asyncio.TimeoutError:
                visitor.errors.append(f"no answer to {text!r}")
            sequence += 1
            # People read and type: 10-20 s between messages, about 13 messages a second in all
            # for 200 visitors (the bot itself serves about 20 a second on 2 cores).
            await asyncio.sleep(random.uniform(10, 20))
    except Exception as error:  # noqa: BLE001 (counted and reported, the run goes on)
        visitor.errors.append(f"{error.__class__.__name__}: {error}")
    finally:
        await sio.disconnect()


async def soak(clients: int, seconds: float) -> int:
    settings = get_settings()
    base = f"http://127.0.0.1:{settings.gateway_port}"
    deadline = time.monotonic() + seconds
    visitors = [Visitor() for _ in range(clients)]
    await asyncio.gather(*(run_visitor(i, base, deadline, v) for i, v in enumerate(visitors)))
    sent = sum(len(v.sent) for v in visitors)
    answered = sum(v.answered for v in visitors)
    store = Store(settings.resolved_database_url())
    lost = out_of_order = 0
    for v in visitors:
        if not v.session:
            continue
        stored = [m.text for m in conversation_messages(store, v.session) if m.sender == "visitor"]
        lost += len([t for t in v.sent if t not in stored])
        out_of_order += stored != v.sent
    latencies = [l for v in visitors for l in v.latencies]
    errors = [e for v in visitors for e in v.errors]
    print(f"{clients} widget connections for {seconds:.0f} s: {sent} messages sent, {answered} answered")
    print(f"stored: {lost} lost, {out_of_order} conversations out of order; errors: {len(errors)}")
    if latencies:
        print(f"answer latency under load: p50 {statistics.median(latencies):.0f} ms, max {max(latencies):.0f} ms")
    for error in errors[:5]:
        print("  ", error)
    return 0 if (lost == 0 and out_of_order == 0 and answered == sent and not errors) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    return asyncio.run(soak(min(args.clients, 500), min(args.seconds, 300)))


if __name__ == "__main__":
    sys.exit(main())
