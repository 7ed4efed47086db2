"""`python -m bot chat`: talk to the running Deskmate from a terminal, through the gateway's JSON API.

The gateway routes the conversation as it does a website visitor's: to the
bot, or to the team once a ticket is open; an agent's replies show up here
too (the chat looks for new messages every few seconds). Buttons are
numbered: type the number to press one.
"""
from __future__ import annotations

import argparse
import asyncio
import uuid
from typing import Any, Dict, List

import aiohttp

from bot.settings import get_settings

POLL_SECONDS = 2.0
SPEAKERS = {"bot": "bot", "agent": "agent", "system": "--"}


class TerminalChat:
    """One conversation through the JSON API: sends lines, prints every new message once."""

    def __init__(self, session: aiohttp.ClientSession, gateway_url: str, sender: str) -> None:
        self.session = session
        self.url = f"{gateway_url}/api/messages"
        self.sender = sender
        self.last_id = 0
        self.buttons: List[Dict[str, Any]] = []

    async def send(self, text: str) -> None:
        """Post one message; raises aiohttp.ClientError, ValueError (the gateway's answer is not JSON)."""
        async with self.session.post(self.url, json={"sender": self.sender, "message": text}) as response:
            body = await response.json(content_type=None)
            if response.status != 200:
                print(f"the gateway answered HTTP {response.status}: {body.get('error', body)}", flush=True)
        await self.show_new()

    async def show_new(self) -> None:
        """Print the messages since the last one shown (not the visitor's own); remember their buttons."""
        params = {"sender": self.sender, "after": str(self.last_id)}
        async with self.session.get(self.url, params=params) as response:
            if response.status != 200:
                return
            messages = (await response.json(content_type=None)).get("messages") or []
        for message in messages:
            self.last_id = max(self.last_id, int(message.get("id") or 0))
            if message.get("from") == "visitor":
                continue
            if message.get("text"):
                print(f"{SPEAKERS.get(str(message.get('from')), 'bot')}> {message['text']}", flush=True)
            if message.get("quick_replies"):
                self.buttons = list(message["quick_replies"])
                for number, button in enumerate(self.buttons, start=1):
                    print(f"     [{number}] {button.get('title')}", flush=True)

    async def poll(self) -> None:
        """Show what arrives meanwhile (an agent's reply) until cancelled."""
        while True:
            await asyncio.sleep(POLL_SECONDS)
            try:
                await self.show_new()
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
                continue


async def chat_loop(gateway_url: str, api_token: str, sender: str) -> int:
    """Read lines, send them, print replies, until EOF or /quit; 2 when the gateway does not answer."""
    print("Chat with Deskmate (type a number to press a button, /quit to leave).")
    headers = {"Authorization": f"Bearer {api_token}"}
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60), headers=headers) as session:
        chat = TerminalChat(session, gateway_url, sender)
        poller = asyncio.create_task(chat.poll())
        try:
            while True:
                try:
                    line = await loop.run_in_executor(None, input, "you> ")
                except (EOFError, KeyboardInterrupt):
                    print()
                    return 0
                if line.strip() == "/quit":
                    return 0
                if line.strip().isdigit() and 0 < int(line) <= len(chat.buttons):
                    line = str(chat.buttons[int(line) - 1].get("payload") or "")
                try:
                    await chat.send(line)
                except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
                    print(f"the gateway at {gateway_url} did not answer ({error.__class__.__name__}).\n"
                          "Is Deskmate running? Start it with `make run`.")
                    return 2
        finally:
            poller.cancel()


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
