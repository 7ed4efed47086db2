"""Several Rasa servers behind one client: each conversation keeps to one server, and moves when it is down.

A conversation's server is chosen by a stable hash of its id (CRC-32, the
same in every gateway process and after restarts, unlike Python's ``hash``),
so its turns are processed by one server, in order, with nothing shared but
the tracker store. When that server cannot be reached (connection refused or
dropped: it saw nothing, or died while working) the next one in the ring
takes the message; every server reads the conversation's tracker from the
shared tracker store, so the answer takes the whole history into account.
A slow server is never bypassed (it may be working on the message: sending
it elsewhere could process it twice).

With one URL this is a thin layer over ``RasaClient``.
"""
from __future__ import annotations

import asyncio
import zlib
from typing import Any, List, Mapping, Optional, Sequence

from bot.protocol import RasaReply
from bot.rasa_client import DESKMATE_CHANNEL, BotUnreachableError, RasaClient


class RasaServers:
    """The Rasa servers at ``urls`` (e.g. ["http://127.0.0.1:5005", "http://127.0.0.1:5006"]).

    ``timeout_seconds`` bounds each request, as in ``RasaClient``. Raises
    ValueError for an empty list. Use as an async context manager, or call
    ``close`` when done.
    """

    def __init__(self, urls: Sequence[str], token: str = "", timeout_seconds: float = 60.0) -> None:
        if not urls:
            raise ValueError("at least one Rasa server URL is needed")
        self.clients = [RasaClient(url, token, timeout_seconds) for url in urls]

    async def __aenter__(self) -> "RasaServers":
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    @property
    def urls(self) -> List[str]:
        return [client.base_url for client in self.clients]

    def ring(self, conversation_id: str) -> List[RasaClient]:
        """The servers to try for a conversation: its own first, then the others in ring order."""
        start = zlib.crc32(conversation_id.encode("utf-8")) % len(self.clients)
        return self.clients[start:] + self.clients[:start]

    async def send(
        self, sender: str, text: str, metadata: Optional[Mapping[str, Any]] = None, channel: str = DESKMATE_CHANNEL,
        message_id: Optional[str] = None, retry: bool = False,
    ) -> List[RasaReply]:
        """The bot's replies to one message of conversation ``sender``, from its server or, when that one
        cannot be reached, the next that can. Raises BotUnreachableError when none can be reached, and
        the server's BotUnavailableError (timeout, HTTP error) as ``RasaClient.send`` does."""
        error: Optional[BotUnreachableError] = None
        for client in self.ring(sender):
            try:
                return await client.send(sender, text, metadata, channel, message_id=message_id, retry=retry)
            except BotUnreachableError as unreachable:
                error = unreachable
        assert error is not None
        raise error

    async def whole(self, channel: str = DESKMATE_CHANNEL, timeout_seconds: float = 5.0) -> bool:
        """Whether some server can answer questions (its Rasa server and action server both answer)."""
        for client in self.clients:
            if await client.whole(channel, timeout_seconds):
                return True
        return False

    async def close(self) -> None:
        """Release every server's connection pool."""
        await asyncio.gather(*(client.close() for client in self.clients))
