"""Relaying a visitor's message to the bot and reading its answer.

The gateway talks to Rasa through the ``deskmate`` channel
(bot/gateway/rasa_channel.py: the REST channel with each bot message kept
whole) and gives the widget Rasa's socketio ``bot_uttered`` shape:
``{"text", "quick_replies": [...], "metadata": {"deskmate": {...}}}``.
"""
from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Mapping, Optional

import aiohttp

PAYLOAD_KEY = "deskmate"
OutMessage = Dict[str, Any]


class BotUnavailableError(RuntimeError):
    """The bot did not answer in time, or answered with an error or nothing at all."""


def quick_replies(buttons: Optional[List[Mapping[str, Any]]]) -> List[Dict[str, str]]:
    """Rasa buttons as socketio quick replies."""
    return [
        {"content_type": "text", "title": str(b.get("title", "")), "payload": str(b.get("payload", ""))}
        for b in buttons or []
    ]


def widget_messages(replies: List[Mapping[str, Any]]) -> List[OutMessage]:
    """The deskmate channel's replies (one per bot message) in the widget's format."""
    messages: List[OutMessage] = []
    for reply in replies:
        custom = reply.get("custom")
        payload = custom.get(PAYLOAD_KEY) if isinstance(custom, dict) else None
        if not (reply.get("text") or reply.get("buttons") or payload):
            continue
        messages.append({
            "text": str(reply.get("text") or ""),
            "quick_replies": quick_replies(reply.get("buttons")),
            "metadata": {PAYLOAD_KEY: payload} if payload else {},
        })
    return messages


class RasaRelay:
    """Sends messages to Rasa's REST channel with a bounded wait; resumes the bot after a ticket."""

    def __init__(self, rasa_url: str, api_token: str, timeout_seconds: float) -> None:
        self._base = rasa_url.rstrip("/")
        self._url = f"{self._base}/webhooks/deskmate/webhook"
        self._token = api_token
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: Optional[aiohttp.ClientSession] = None

    async def resume_bot(self, conversation_id: str) -> None:
        """Tell the bot the team has closed the ticket (its ``ticket_open`` slot); raises BotUnavailableError."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        events = [
            {"event": "slot", "name": "ticket_open", "value": False},
            {"event": "slot", "name": "ticket_number", "value": None},
            {"event": "slot", "name": "low_confidence_turns", "value": 0.0},
        ]
        url = f"{self._base}/conversations/{conversation_id}/tracker/events"
        try:
            async with self._session.post(url, params={"token": self._token}, json=events) as response:
                if response.status != 200:
                    raise BotUnavailableError(f"the bot's API answered HTTP {response.status}")
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            raise BotUnavailableError(f"the bot's API did not answer: {error.__class__.__name__}") from error

    async def close(self) -> None:
        """Release the HTTP connection pool."""
        if self._session is not None:
            await self._session.close()

    async def send(self, conversation_id: str, text: str, metadata: Mapping[str, Any]) -> List[OutMessage]:
        """The bot's answer to one message; raises BotUnavailableError."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        body = {"sender": conversation_id, "message": text, "metadata": dict(metadata)}
        try:
            async with self._session.post(self._url, json=body) as response:
                if response.status != 200:
                    raise BotUnavailableError(f"the bot answered HTTP {response.status}")
                replies = await response.json()
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
            raise BotUnavailableError(f"the bot did not answer: {error.__class__.__name__}") from error
        messages = widget_messages(replies if isinstance(replies, list) else [])
        if not messages:
            # Every turn of this bot says something; silence means the action server failed.
            raise BotUnavailableError("the bot answered nothing")
        return messages
