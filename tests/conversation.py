"""Talking to the running test bot as a visitor does, through the gateway's JSON API (shared by the end-to-end tests).

Each ``talk`` starts an in-process gateway (aiohttp's test server) in front of
the session's Rasa server and action server, sharing their store and clock,
and posts the messages to ``POST /api/messages``: the gateway stores them,
routes them (bot or team) and answers in the widget's format.
"""
from __future__ import annotations

import asyncio
import uuid
from typing import Any, Dict, List, Optional

from aiohttp.test_utils import TestClient, TestServer

from bot.gateway.app import make_app
from bot.identity import TOKEN_METADATA_KEY
from bot.settings import Settings
from tests.conftest import BOT_CLOCK


def new_sender() -> str:
    """A fresh API sender; its conversation is ``conversation_of(sender)``."""
    return f"test-{uuid.uuid4().hex}"


def conversation_of(sender: str) -> str:
    """The conversation id the gateway gives an API sender."""
    return f"api:{sender}"


def talk(
    settings: Settings, messages: List[str], sender: str = "", token: Optional[str] = None
) -> List[List[Dict[str, Any]]]:
    """Send messages in one conversation (signed in with ``token`` if given); the replies to each."""
    sender = sender or new_sender()
    metadata = {TOKEN_METADATA_KEY: token} if token else {}
    gateway_settings = settings.copy(update={"fixed_now": BOT_CLOCK.isoformat()})

    async def run() -> List[List[Dict[str, Any]]]:
        client = TestClient(TestServer(make_app(gateway_settings)))
        await client.start_server()
        headers = {"Authorization": f"Bearer {gateway_settings.resolved_api_token()}"}
        try:
            turns = []
            for text in messages:
                response = await client.post(
                    "/api/messages", json={"sender": sender, "message": text, "metadata": metadata}, headers=headers
                )
                assert response.status == 200, await response.text()
                turns.append((await response.json())["messages"])
            return turns
        finally:
            await client.close()

    return asyncio.run(run())


def deskmate_payloads(replies: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The machine-readable ``deskmate`` payloads among the replies."""
    return [r["metadata"]["deskmate"] for r in replies if "deskmate" in (r.get("metadata") or {})]


def buttons(replies: List[Dict[str, Any]]) -> List[Dict[str, str]]:
    """Every button offered in the replies."""
    return [b for r in replies for b in r.get("quick_replies") or []]


def texts(replies: List[Dict[str, Any]]) -> str:
    """All reply texts, joined."""
    return " ".join(r.get("text") or "" for r in replies)


def handoff_of(replies: List[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """The handoff payload among the replies, if a ticket was opened or found."""
    return next((p for p in deskmate_payloads(replies) if p.get("type") == "handoff"), None)
