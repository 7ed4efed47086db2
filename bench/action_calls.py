"""CPU and wall time of one call from Rasa to its action server: Rasa's new connection per call against the
kept-alive connection of bot/rasa_plugins/action_connections.py.

Starts ``python -m bot actions`` on a free port, then, in a fresh process per run, sends ``--calls`` GET
requests to its health page through Rasa's ``EndpointConfig.request`` (after 50 warm-up calls) and prints
the caller's CPU time and wall time per call (ms) and the action server's CPU time per call (ms, from
/proc/PID/stat). Runs alternate Rasa's way and the kept way ``--rounds`` times each.

    .venv/bin/python bench/action_calls.py [--calls 1000] [--rounds 2]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


async def calls(url: str, count: int, kept: bool) -> str:
    from rasa.utils.endpoints import EndpointConfig

    from bot.rasa_plugins import action_connections

    if kept:
        action_connections.install()
    endpoint = EndpointConfig(url)
    for _ in range(50):
        await endpoint.request(method="get")
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(count):
        await endpoint.request(method="get")
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    await action_connections.close_sessions()
    return f"{1000 * cpu / count:.3f} {1000 * wall / count:.3f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", choices=["rasa", "kept"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(asyncio.run(calls(args.url, args.calls, args.child == "kept")))
        return 0
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "bot", "actions", "--port", str(port)], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/health"
    try:
        for _ in range(120):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        print(f"{args.calls} calls per run after 50 warm-up calls, ms per call")
        print("| connection | caller CPU | caller wall | action server CPU |")
        print("|---|---|---|---|")
        for _ in range(args.rounds):
            for way in ("rasa", "kept"):
                before = cpu_seconds(server.pid)
                out = subprocess.run([sys.executable, __file__, "--child", way, "--url", url, "--calls", str(args.calls)],
                                     cwd=ROOT, capture_output=True, text=True, check=True,
                                     env={**os.environ, "PYTHONPATH": str(ROOT)})
                server_ms = 1000 * (cpu_seconds(server.pid) - before) / (args.calls + 50)
                caller_cpu, caller_wall = out.stdout.split()[-2:]
                name = "new per call (Rasa 3.6)" if way == "rasa" else "kept alive"
                print(f"| {name} | {caller_cpu} | {caller_wall} | {server_ms:.3f} |")
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
