"""Talking to the running test bot through its REST channel (shared by the end-to-end tests)."""
from __future__ import annotations

import asyncio
import uuid
from typing import Any, Dict, List, Optional

import aiohttp

from bot.eval.runner import BotClient
from bot.identity import TOKEN_METADATA_KEY
from bot.settings import Settings


def talk(
    settings: Settings, messages: List[str], sender: str = "", token: Optional[str] = None
) -> List[List[Dict[str, Any]]]:
    """Send messages in one conversation (signed in with ``token`` if given); the replies to each."""
    sender = sender or f"test-{uuid.uuid4().hex}"
    metadata = {TOKEN_METADATA_KEY: token} if token else {}

    async def run() -> List[List[Dict[str, Any]]]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            client = BotClient(session, settings.rasa_url, settings.resolved_rasa_token())
            return [await client.send(sender, text, metadata) for text in messages]

    return asyncio.run(run())


def deskmate_payloads(replies: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The machine-readable ``deskmate`` payloads among the replies."""
    return [r["custom"]["deskmate"] for r in replies if "deskmate" in (r.get("custom") or {})]


def buttons(replies: List[Dict[str, Any]]) -> List[Dict[str, str]]:
    """Every button offered in the replies."""
    return [b for r in replies for b in r.get("buttons") or []]


def texts(replies: List[Dict[str, Any]]) -> str:
    """All reply texts, joined."""
    return " ".join(r.get("text") or "" for r in replies)


def handoff_of(replies: List[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """The handoff payload among the replies, if a ticket was opened or found."""
    return next((p for p in deskmate_payloads(replies) if p.get("type") == "handoff"), None)
