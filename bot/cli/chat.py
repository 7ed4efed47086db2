"""`python -m bot chat`: talk to the running Deskmate from a terminal, through the gateway's JSON API.

The gateway routes the conversation as it does a website visitor's: to the
bot, or to the team once a ticket is open. Buttons are numbered: type the
number to press one.
"""
from __future__ import annotations

import argparse
import asyncio
import uuid
from typing import Any, Dict, List

import aiohttp

from bot.settings import get_settings


def render(messages: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Print the replies; the buttons offered (quick replies), numbered from 1."""
    buttons: List[Dict[str, Any]] = []
    for message in messages:
        if message.get("text"):
            print(f"bot> {message['text']}")
        for button in message.get("quick_replies") or []:
            buttons.append(button)
            print(f"     [{len(buttons)}] {button.get('title')}")
    return buttons


async def chat_loop(gateway_url: str, api_token: str, sender: str) -> int:
    """Read lines, send them, print replies, until EOF or /quit; 2 when the gateway does not answer."""
    print("Chat with Deskmate (type a number to press a button, /quit to leave).")
    buttons: List[Dict[str, Any]] = []
    headers = {"Authorization": f"Bearer {api_token}"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60), headers=headers) as session:
        while True:
            try:
                line = input("you> ")
            except (EOFError, KeyboardInterrupt):
                print()
                return 0
            if line.strip() == "/quit":
                return 0
            if line.strip().isdigit() and 0 < int(line) <= len(buttons):
                line = str(buttons[int(line) - 1].get("payload") or "")
            try:
                async with session.post(f"{gateway_url}/api/messages", json={"sender": sender, "message": line}) as response:
                    body = await response.json(content_type=None)
                    if response.status != 200:
                        print(f"the gateway answered HTTP {response.status}: {body.get('error', body)}")
                        continue
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
                print(f"the gateway at {gateway_url} did not answer ({error.__class__.__name__}).\n"
                      "Is Deskmate running? Start it with `make run`.")
                return 2
            buttons = render(body.get("messages") or [])


def cmd_chat(args: argparse.Namespace) -> int:
    """A terminal chat with the running Deskmate through its gateway."""
    settings = get_settings()
    host = "127.0.0.1" if settings.gateway_host in ("0.0.0.0", "::") else settings.gateway_host
    url = (args.url or f"http://{host}:{settings.gateway_port}").rstrip("/")
    return asyncio.run(chat_loop(url, settings.resolved_api_token(), f"cli-{uuid.uuid4().hex[:8]}"))


def add_commands(commands: Any) -> None:
    """Register this module's sub-command on ``commands`` (argparse sub-parsers)."""
    chat = commands.add_parser("chat", help="chat with the running Deskmate in the terminal (through the gateway)")
    chat.add_argument("--url", help="the gateway's URL (default: http://DESKMATE_GATEWAY_HOST:DESKMATE_GATEWAY_PORT)")
    chat.set_defaults(handler=cmd_chat)
