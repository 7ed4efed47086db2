"""`python -m bot chat`: talk to the running bot from a terminal (buttons by number)."""
from __future__ import annotations

from typing import Any, Dict, List

import aiohttp

from bot.eval.runner import BotClient, BotUnreachableError


def render(replies: List[Dict[str, Any]]) -> List[Dict[str, str]]:
    """Print the bot's replies; the buttons offered, numbered from 1."""
    buttons: List[Dict[str, str]] = []
    for reply in replies:
        if reply.get("text"):
            print(f"bot> {reply['text']}")
        for button in reply.get("buttons") or []:
            buttons.append(button)
            print(f"     [{len(buttons)}] {button.get('title')}")
    return buttons


async def chat_loop(rasa_url: str, sender: str) -> int:
    """Read lines, send them, print replies, until EOF or /quit."""
    print("Chat with the bot (type a number to press a button, /quit to leave).")
    buttons: List[Dict[str, str]] = []
    async with aiohttp.ClientSession() as session:
        client = BotClient(session, rasa_url, token="")
        while True:
            try:
                line = input("you> ")
            except (EOFError, KeyboardInterrupt):
                print()
                return 0
            if line.strip() == "/quit":
                return 0
            if line.strip().isdigit() and 0 < int(line) <= len(buttons):
                line = buttons[int(line) - 1]["payload"]
            try:
                buttons = render(await client.send(sender, line))
            except BotUnreachableError as error:
                print(f"{error}\nIs the bot running? Start it with `make run`.")
                return 2
