"""Talking to the running test bot as visitors and agents do: through the gateway (shared by the end-to-end tests).

``talk`` starts an in-process gateway (aiohttp's test server) in front of the
session's Rasa server and action server, sharing their store and clock, and
posts the messages to ``POST /api/messages``: the gateway stores them, routes
them (bot or team) and answers in the widget's format. ``Widget`` speaks the
widget's socket.io protocol; ``sign_in`` signs agent Maria into the inbox.
"""
from __future__ import annotations

import asyncio
import uuid
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.gateway.app import make_app
from bot.identity import TOKEN_METADATA_KEY
from bot.settings import Settings
from tests.conftest import AGENT_EMAIL, AGENT_PASSWORD, BOT_CLOCK
from tests.socket_client import socket_client


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


async def start(settings: Settings) -> TestClient:
    """An in-process gateway for ``settings``, started (close it with ``await client.close()``)."""
    client = TestClient(TestServer(make_app(settings)))
    await client.start_server()
    return client


async def post_message(client: TestClient, settings: Settings, sender: str, text: str) -> Dict[str, Any]:
    """``POST /api/messages`` with the API token; the answer's JSON (asserts HTTP 200)."""
    response = await client.post(
        "/api/messages",
        json={"sender": sender, "message": text},
        headers={"Authorization": f"Bearer {settings.resolved_api_token()}"},
    )
    assert response.status == 200, await response.text()
    return await response.json()


class Widget:
    """A socket.io client speaking the widget's side of the protocol."""

    EVENTS = ("session_confirm", "bot_uttered", "deskmate_history", "deskmate_notice", "deskmate_received",
              "deskmate_visitor_message")

    def __init__(self, base_url: str, headers: Optional[Mapping[str, str]] = None) -> None:
        self.base_url = base_url
        self.headers = dict(headers or {})
        self.sio = socket_client()
        self.received: "asyncio.Queue[Tuple[str, Any]]" = asyncio.Queue()
        for event in self.EVENTS:
            self.sio.on(event, self._recorder(event))
        self.session_id: Optional[str] = None

    def _recorder(self, event: str) -> Any:
        async def record(data: Any) -> None:
            await self.received.put((event, data))
        return record

    async def connect(self) -> None:
        await self.sio.connect(self.base_url, transports=["websocket"], headers=self.headers)

    async def open(self, session_id: Optional[str] = None) -> str:
        await self.connect()
        await self.sio.emit("session_request", {"session_id": session_id})
        self.session_id = await self.next("session_confirm")
        return self.session_id

    async def next(self, wanted: str, timeout: float = 15.0) -> Any:
        while True:
            event, data = await asyncio.wait_for(self.received.get(), timeout)
            if event == wanted:
                return data

    async def say(self, text: str, session_id: Optional[str] = None) -> None:
        await self.sio.emit("user_uttered", {"message": text, "session_id": session_id or self.session_id})

    async def close(self) -> None:
        await self.sio.disconnect()


async def sign_in(client: TestClient, password: str = AGENT_PASSWORD, email: str = AGENT_EMAIL) -> str:
    """Sign an agent (Maria by default) in; the inbox page's CSRF token."""
    page = await client.get("/agent/login")
    token = (await page.text()).split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    response = await client.post(
        "/agent/login", data={"email": email, "password": password, "csrf_token": token}, allow_redirects=False,
    )
    assert response.status == 302, await response.text()
    inbox = await client.get("/agent")
    return (await inbox.text()).split('name="csrf-token" content="', 1)[1].split('"', 1)[0]


async def until(check: Callable[[], Any], what: str = "the condition", timeout: float = 30.0) -> Any:
    """Wait until ``check()`` (sync or async) is truthy, polling every 50 ms; its value.

    Fails the test naming ``what`` after ``timeout`` seconds (a generous bound
    for a slow machine, not a measurement).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for: {what}")
        await asyncio.sleep(0.05)
