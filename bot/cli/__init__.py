"""`python -m bot`: Deskmate's one command line. Each sub-command lives in the module of its area.

- ``model``: kb check, nlp build, train, eval, check, retrain;
- ``operations``: db upgrade, demo seed/token, staff accounts, report;
- ``run``: run (the whole stack), serve (the gateway alone);
- ``chat``: a terminal chat through the running gateway.
"""
from __future__ import annotations

import argparse
from typing import List, Optional

from bot.cli import chat, model, operations, run


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every sub-command."""
    parser = argparse.ArgumentParser(prog="python -m bot", description="Deskmate support bot")
    commands = parser.add_subparsers(dest="command", required=True)
    for area in (model, operations, run, chat):
        area.add_commands(commands)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run one sub-command; its exit code."""
    args = build_parser().parse_args(argv)
    return int(args.handler(args))
