"""The one HTTP client for a Rasa server: its channels, its HTTP API, and whether it is up.

- ``send``: a visitor message through the ``deskmate`` channel
  (bot/rasa_plugins/channel.py: one reply per bot message, payload included;
  the gateway, eval and benchmarks all use it), with the server's token;
- ``latest_parse``: NLU's reading of a conversation's latest message (the eval);
- ``status`` / ``load_model``: which model the server runs, and replacing it
  (retraining); the HTTP API needs the server's token.

Every method raises ``BotUnavailableError`` when the server does not answer
in time, answers an HTTP error, or answers something that is not JSON.
"""
from __future__ import annotations

import asyncio
from pathlib import Path
from types import TracebackType
from typing import Any, Dict, List, Mapping, Optional, Type, cast

import aiohttp

from bot.protocol import RasaReply

DESKMATE_CHANNEL = "deskmate"


class BotUnavailableError(RuntimeError):
    """The Rasa server did not answer in time, or answered with an error."""


class BotUnreachableError(BotUnavailableError):
    """Nothing listens where the Rasa server should be (connection refused or dropped): it saw nothing."""


class BotTimeoutError(BotUnavailableError):
    """The Rasa server took the request and did not answer within the time-out."""


class RasaClient:
    """Talks to the Rasa server at ``rasa_url`` (e.g. http://127.0.0.1:5005) with a bounded wait.

    ``timeout_seconds`` bounds each request (a model load gets ``load_timeout_seconds``).
    Use as an async context manager, or call ``close`` when done.
    """

    def __init__(self, rasa_url: str, token: str = "", timeout_seconds: float = 60.0) -> None:
        self.base_url = rasa_url.rstrip("/")
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: Optional[aiohttp.ClientSession] = None

    async def __aenter__(self) -> "RasaClient":
        return self

    async def __aexit__(
        self, kind: Optional[Type[BaseException]], error: Optional[BaseException], trace: Optional[TracebackType]
    ) -> None:
        await self.close()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        """Release the connection pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _json(
        self, method: str, path: str, body: Any = None, api: bool = False, timeout: Optional[float] = None,
        query: Optional[Dict[str, str]] = None,
    ) -> Any:
        params = {**(query or {}), **({"token": self._token} if api and self._token else {})} or None
        # The deskmate channel wants the same token as a bearer (bot/rasa_plugins/channel.py).
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else None
        what = f"{method} {path}"
        try:
            # Only a call with its own limit passes a timeout: an explicit None would lift the session's.
            extra = {"timeout": aiohttp.ClientTimeout(total=timeout)} if timeout else {}
            async with self._http().request(
                method, f"{self.base_url}{path}", json=body, params=params, headers=headers, **extra
            ) as response:
                if response.status >= 400:
                    detail = (await response.text())[:300]
                    raise BotUnavailableError(f"the bot answered HTTP {response.status} to {what}: {detail}")
                if response.status == 204:
                    return None
                return await response.json(content_type=None)
        except asyncio.TimeoutError as error:
            raise BotTimeoutError(f"the bot at {self.base_url} did not answer {what} in time") from error
        except (aiohttp.ClientConnectionError, ConnectionError) as error:
            raise BotUnreachableError(f"the bot at {self.base_url} cannot be reached ({what}): {error.__class__.__name__}") from error
        except (aiohttp.ClientError, ValueError) as error:
            raise BotUnavailableError(f"the bot at {self.base_url} did not answer {what}: {error.__class__.__name__}") from error

    async def send(
        self, sender: str, text: str, metadata: Optional[Mapping[str, Any]] = None, channel: str = DESKMATE_CHANNEL,
        message_id: Optional[str] = None, retry: bool = False,
    ) -> List[RasaReply]:
        """The bot's replies to one message of conversation ``sender`` through ``channel``.

        ``message_id``: the message's id in Rasa's tracker (Rasa makes one when None). With ``retry``
        (Deskmate's channel only), a message the tracker already holds under that id is not processed
        again: the replies it got then come back (a gateway stopped before it stored them).
        """
        body: Dict[str, Any] = {"sender": sender, "message": text, "metadata": dict(metadata or {})}
        if message_id is not None:
            body["message_id"] = message_id
            body["retry"] = retry
        replies = await self._json("POST", f"/webhooks/{channel}/webhook", body)
        return [cast(RasaReply, reply) for reply in replies if isinstance(reply, dict)] if isinstance(replies, list) else []

    async def whole(self, channel: str = DESKMATE_CHANNEL, timeout_seconds: float = 5.0) -> bool:
        """Whether the bot can answer questions, not only small talk: its channel's health page says
        200 only while the Rasa server *and* its action server answer (bot/rasa_plugins/channel.py)."""
        try:
            await self._json("GET", f"/webhooks/{channel}/", timeout=timeout_seconds)
        except BotUnavailableError:
            return False
        return True

    async def parse(self, text: str) -> Dict[str, Any]:
        """NLU's reading of ``text`` (``/model/parse``: intents, entities, response selector), no conversation."""
        return dict(await self._json("POST", "/model/parse", {"text": text}, api=True) or {})

    async def latest_parse(self, sender: str) -> Dict[str, Any]:
        """NLU's result for the conversation's latest user message (``tracker.latest_message``)."""
        tracker = await self._json("GET", f"/conversations/{sender}/tracker", api=True, query={"include_events": "NONE"})
        return dict((tracker or {}).get("latest_message") or {})

    async def status(self) -> Dict[str, Any]:
        """The server's /status: the model file and ``model_id`` it runs."""
        return dict(await self._json("GET", "/status", api=True) or {})

    async def load_model(self, model: Path, timeout_seconds: float = 900.0) -> None:
        """Have the server replace its model with the archive at ``model`` (a path the server can read)."""
        await self._json("PUT", "/model", {"model_file": str(model.resolve())}, api=True, timeout=timeout_seconds)


async def answers(url: str, timeout_seconds: float = 2.0) -> bool:
    """Whether ``url`` answers HTTP 200 (a server's health page: Rasa, the action server, the gateway)."""
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_seconds)) as session:
            async with session.get(url) as response:
                return response.status == 200
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
        return False
