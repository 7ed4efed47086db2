"""CPU cost of the gateway's rate limits per message: fixed against moving windows, ``limits``' memory storage.

    .venv/bin/python bench/rate_limits.py [--rate 60] [--seconds 20] [--conversations 50] [--addresses 500]

Sends ``--rate`` messages a second for ``--seconds`` through the same two
checks the gateway makes per message (per conversation and per client
address, the default limits of bot/settings.py), spread over
``--conversations`` conversations and ``--addresses`` addresses, once with
each strategy, and prints the process's CPU time per message in ms (the
library's expiry timer thread included). The figure for moving windows grows
with the hits kept in the last period, so with the rate.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import List, Optional, Type

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from limits import parse  # noqa: E402
from limits.storage import MemoryStorage  # noqa: E402
from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter, RateLimiter  # noqa: E402

from bot.settings import Settings  # noqa: E402


def cpu_ms_per_message(strategy: Type[RateLimiter], args: argparse.Namespace) -> float:
    """Process CPU ms per message while hitting both limits at ``args.rate`` messages/s."""
    settings = Settings()
    limiter = strategy(MemoryStorage())
    per_conversation = parse(settings.rate_messages_per_conversation)
    per_address = parse(settings.rate_messages_per_ip)
    start_cpu, start = time.process_time(), time.monotonic()
    sent = 0
    while time.monotonic() - start < args.seconds:
        sent += 1
        limiter.hit(per_conversation, "conversation", f"c{sent % args.conversations}")
        limiter.hit(per_address, "address", f"a{sent % args.addresses}")
        time.sleep(1 / args.rate)
    return 1000 * (time.process_time() - start_cpu) / sent


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rate", type=float, default=60.0, help="messages per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--addresses", type=int, default=500)
    args = parser.parse_args(argv)
    print(f"{args.rate:g} messages/s for {args.seconds:g} s, {args.conversations} conversations, {args.addresses} addresses")
    for name, strategy in (("moving windows", MovingWindowRateLimiter), ("fixed windows", FixedWindowRateLimiter)):
        print(f"  {name}: {cpu_ms_per_message(strategy, args):.2f} ms CPU per message")
    return 0


if __name__ == "__main__":
    sys.exit(main())
