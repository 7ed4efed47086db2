"""Throughput under load: closed-loop visitors through the widget socket, beside the same load sent straight to Rasa.

With Deskmate running (`make run`, or `python -m bot run --gateways N --rasa-servers M`),
for each load (concurrent visitors, default 10, 50 and 100), in one run on the same model:

1. ``rasa``: that many senders POST questions straight to stock Rasa's REST
   webhook (``/webhooks/rest/webhook``), each sending its next question as
   soon as the previous answer came (no think time), for ``--seconds``. The
   bench starts that Rasa server itself, on a free port of 127.0.0.1: the
   newest model, the running action server, a tracker store of its own, and
   a credentials file with Rasa's ``rest:`` channel alone (none of
   Deskmate's plugins), so it is Rasa as shipped; Deskmate's own Rasa
   servers serve only the gateway's channel;
2. ``deskmate``: the same through the gateways' widget sockets (visitors
   spread over ``--gateway`` URLs), a visitor's path: stored, routed, answered.

Per phase: messages answered per second, latency p50/p95/p99 (send to the
first answer; "one moment" notices are not answers), errors, visitors
silenced (no answer within ``--patience`` s) and conversations that ended
with the team (a ticket opened: the bot counted as down). Then a per-turn
latency curve over one ``--curve``-message conversation on each path.

    .venv/bin/python bench/throughput.py [--loads 10,50,100] [--seconds 30] [--curve 100]
        [--gateway http://127.0.0.1:8000,http://127.0.0.1:8001] [--label default]

Prints a Markdown table (bench/README.md, "Throughput") and, with --json FILE, writes the figures.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.settings import get_settings  # noqa: E402
from tests.socket_client import socket_client  # noqa: E402  (the widget's side, also used by the tests)

# FAQ-tier questions (none asks for a person): every answer should come from the bot.
QUESTIONS = [
    "how do i turn on subtitles", "where can i find my invoices", "how do i cancel my subscription",
    "what devices can i watch on", "my download expired", "can i pay with paypal", "how do i reset my password",
    "is there a student discount", "why was i charged twice", "how many screens can i watch on at once",
]
ANSWER_TYPES = {"article", "suggestions", "rephrase", "related", "contact", "handoff", "notice", "subscription",
                "tickets"}
TEAM_TYPES = {"handoff"}


def percentile(values: List[float], share: float) -> float:
    """The nearest-rank percentile of ``values`` (0 for none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(share * len(ordered)) - 1))]


@dataclass
class Phase:
    """One load on one path; latencies in seconds."""

    path: str
    visitors: int
    seconds: float
    latencies: List[float] = field(default_factory=list)
    errors: int = 0
    silenced: int = 0
    with_team: int = 0

    def row(self) -> Dict[str, Any]:
        return {
            "path": self.path, "visitors": self.visitors, "msg_per_s": round(len(self.latencies) / self.seconds, 1),
            "p50_s": round(percentile(self.latencies, .50), 2), "p95_s": round(percentile(self.latencies, .95), 2),
            "p99_s": round(percentile(self.latencies, .99), 2), "answered": len(self.latencies),
            "errors": self.errors, "silenced": self.silenced, "with_team": self.with_team,
        }


async def rasa_visitor(http: aiohttp.ClientSession, url: str, phase: Phase, until: float,
                       patience: float, offset: int) -> None:
    sender = f"bench-{uuid.uuid4().hex}"
    turn = offset
    while time.monotonic() < until:
        text = QUESTIONS[turn % len(QUESTIONS)]
        turn += 1
        started = time.monotonic()
        try:
            async with http.post(f"{url}/webhooks/rest/webhook", json={"sender": sender, "message": text},
                                 timeout=aiohttp.ClientTimeout(total=patience)) as response:
                body = await response.json(content_type=None)
                if response.status != 200 or not body:
                    phase.errors += 1
                    continue
        except asyncio.TimeoutError:
            phase.silenced += 1
            return
        except aiohttp.ClientError:
            phase.errors += 1
            await asyncio.sleep(0.5)
            continue
        phase.latencies.append(time.monotonic() - started)


async def widget_visitor(gateway: str, phase: Phase, until: float, patience: float, offset: int) -> None:
    sio = socket_client()
    inbox: "asyncio.Queue[Dict[str, Any]]" = asyncio.Queue()
    confirmed: "asyncio.Future[str]" = asyncio.get_running_loop().create_future()
    sio.on("bot_uttered", lambda data: inbox.put_nowait(data))
    sio.on("session_confirm", lambda data: None if confirmed.done() else confirmed.set_result(data))
    try:
        await sio.connect(gateway, transports=["websocket"])
        await sio.emit("session_request", {"session_id": None})
        session = await asyncio.wait_for(confirmed, 30)
    except (asyncio.TimeoutError, Exception):  # noqa: BLE001 (a visitor who could not connect is an error)
        phase.errors += 1
        return
    ended_with_team = False
    turn = offset
    try:
        while time.monotonic() < until:
            text = QUESTIONS[turn % len(QUESTIONS)]
            turn += 1
            started = time.monotonic()
            await sio.emit("user_uttered", {"message": text, "session_id": session})
            deadline = started + patience
            while True:
                try:
                    message = await asyncio.wait_for(inbox.get(), max(0.01, deadline - time.monotonic()))
                except asyncio.TimeoutError:
                    phase.silenced += 1
                    return
                kind = ((message.get("metadata") or {}).get("deskmate") or {}).get("type")
                if kind in TEAM_TYPES:
                    ended_with_team = True
                if kind in ANSWER_TYPES:
                    break
            if kind == "notice":  # e.g. rate-limited: start the stack with the bench's limits (bench/README.md)
                phase.errors += 1
                await asyncio.sleep(1.0)
            else:
                phase.latencies.append(time.monotonic() - started)
            while not inbox.empty():  # the rest of the turn (e.g. the feedback buttons) came with it
                inbox.get_nowait()
    finally:
        phase.with_team += ended_with_team
        await sio.disconnect()


async def run_phase(path: str, visitors: int, seconds: float, gateways: List[str], rasa: str,
                    patience: float) -> Phase:
    phase = Phase(path, visitors, seconds)
    connector = aiohttp.TCPConnector(limit=visitors + 10)
    async with aiohttp.ClientSession(connector=connector) as http:
        # The clock starts once every visitor is connected (sockets take a moment to open).
        until = time.monotonic() + seconds + (2.0 if path == "deskmate" else 0.0)
        if path == "rasa":
            tasks = [rasa_visitor(http, rasa, phase, until, patience, i) for i in range(visitors)]
        else:
            tasks = [widget_visitor(gateways[i % len(gateways)], phase, until, patience, i) for i in range(visitors)]
        await asyncio.gather(*tasks)
    return phase


async def curve(path: str, turns: int, gateway: str, rasa: str) -> List[float]:
    """Latency (ms) of each turn of one long conversation."""
    timings: List[float] = []
    if path == "rasa":
        sender = f"bench-curve-{uuid.uuid4().hex}"
        async with aiohttp.ClientSession() as http:
            for turn in range(turns):
                started = time.perf_counter()
                async with http.post(f"{rasa}/webhooks/rest/webhook",
                                     json={"sender": sender, "message": QUESTIONS[turn % len(QUESTIONS)]}) as response:
                    await response.read()
                timings.append((time.perf_counter() - started) * 1000)
        return timings
    sio = socket_client()
    inbox: "asyncio.Queue[Dict[str, Any]]" = asyncio.Queue()
    confirmed: "asyncio.Future[str]" = asyncio.get_running_loop().create_future()
    sio.on("bot_uttered", lambda data: inbox.put_nowait(data))
    sio.on("session_confirm", lambda data: None if confirmed.done() else confirmed.set_result(data))
    await sio.connect(gateway, transports=["websocket"])
    await sio.emit("session_request", {"session_id": None})
    session = await asyncio.wait_for(confirmed, 30)
    try:
        for turn in range(turns):
            started = time.perf_counter()
            await sio.emit("user_uttered", {"message": QUESTIONS[turn % len(QUESTIONS)], "session_id": session})
            while True:
                message = await asyncio.wait_for(inbox.get(), 60)
                if ((message.get("metadata") or {}).get("deskmate") or {}).get("type") in ANSWER_TYPES:
                    break
            timings.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.2)  # the rest of the turn arrives; not timed
            while not inbox.empty():
                inbox.get_nowait()
    finally:
        await sio.disconnect()
    return timings


def curve_rows(timings: List[float], bucket: int = 10) -> List[str]:
    return [f"{start + 1}-{start + bucket}: {percentile(timings[start:start + bucket], .5):.0f}"
            for start in range(0, len(timings), bucket)]


def main(argv: Optional[List[str]] = None) -> int:
    settings = get_settings()
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--loads", default="10,50,100", help="concurrent visitors per phase, comma-separated")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each phase")
    parser.add_argument("--patience", type=float, default=60.0, help="a visitor with no answer this long is silenced")
    parser.add_argument("--gateway", default=f"http://127.0.0.1:{settings.gateway_port}",
                        help="gateway URL(s), comma-separated: visitors are spread over them")
    parser.add_argument("--paths", default="rasa,deskmate", help="which paths to load")
    parser.add_argument("--curve", type=int, default=100, help="turns of the per-turn latency conversation (0: none)")
    parser.add_argument("--label", default="", help="a name for this setting in the table")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    gateways = [url.strip().rstrip("/") for url in args.gateway.split(",") if url.strip()]
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    stock = start_stock_rasa() if "rasa" in paths else None
    try:
        return measure(args, paths, gateways, stock.rasa_url if stock else "")
    finally:
        if stock is not None:
            stock.stop()


def start_stock_rasa() -> Any:
    """Rasa as shipped beside the running stack: its REST channel alone, the newest model, the running
    action server, its own SQLite tracker store (var/bench/); returns the started ``BotProcesses``."""
    from bot.launcher import BotProcesses
    from bot.training.checks import free_port
    from bot.training.models import latest_model

    settings = get_settings()
    folder = settings.var_dir / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    credentials = folder / "stock-credentials.yml"
    credentials.write_text("rest:\n")
    stock_settings = settings.copy(update={"tracker_database_url": f"sqlite:///{folder / 'stock-tracker.db'}",
                                           "redis_url": "", "tracker_cache_events": 0})
    bot = BotProcesses(stock_settings, rasa_port=free_port(), action_port=settings.action_port, log_dir=folder)
    print(f"Starting stock Rasa (REST channel) on {bot.rasa_url} ...", flush=True)
    bot.start_rasa(latest_model(settings), name="stock-rasa", credentials=str(credentials))
    bot.wait_ready()
    return bot


def measure(args: argparse.Namespace, paths: List[str], gateways: List[str], rasa: str) -> int:
    """Run the phases and the curves; print the table."""
    rows: List[Dict[str, Any]] = []
    print("| setting | path | visitors | msg/s | p50 s | p95 s | p99 s | errors | silenced | ended with the team |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for load in [int(x) for x in args.loads.split(",") if x.strip()]:
        for path in paths:
            phase = asyncio.run(run_phase(path, load, args.seconds, gateways, rasa, args.patience))
            row = {"setting": args.label, **phase.row()}
            rows.append(row)
            print(f"| {args.label} | {path} | {load} | {row['msg_per_s']} | {row['p50_s']} | {row['p95_s']} | "
                  f"{row['p99_s']} | {row['errors']} | {row['silenced']} | "
                  f"{row['with_team'] if path == 'deskmate' else '-'} |", flush=True)
            time.sleep(3)  # let the servers settle between phases
    curves: Dict[str, List[float]] = {}
    if args.curve:
        for path in paths:
            curves[path] = asyncio.run(curve(path, args.curve, gateways[0], rasa))
            print(f"per-turn p50 (ms) over one {args.curve}-message conversation, {path}: "
                  + ", ".join(curve_rows(curves[path])), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "curves": curves}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
