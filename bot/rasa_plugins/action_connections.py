"""Rasa's calls to its action server over kept-alive connections, not a new connection for each call.

Rasa 3.6's ``EndpointConfig.request`` (rasa/utils/endpoints.py) opens
``async with self.session()`` for every call: a new aiohttp ``ClientSession``
with its own connector, so every custom action costs a TCP connection set up
and torn down on both sides, and a session built and closed. Here
``EndpointConfig.session`` hands out one session per event loop and endpoint
settings (headers, basic auth), kept open; leaving its ``async with`` does not
close it, so aiohttp reuses the connection for the next call. Everything else
(URL, token, JSON body, timeout, errors) stays Rasa's.

A kept connection is dropped by the client after ``KEEPALIVE_SECONDS`` idle,
well before the action server's own keep-alive (Sanic's default
``KEEP_ALIVE_TIMEOUT``, 5 s) would close it, so a call is never sent on a
connection the server is closing.

Installed when Rasa loads the deskmate channel (bot/rasa_plugins/channel.py),
i.e. only in the Rasa server; pinned Rasa (3.6.21) is what this replaces.
"""
from __future__ import annotations

import asyncio
import json
from types import TracebackType
from typing import Dict, Optional, Tuple, Type

import aiohttp
from rasa.core.constants import DEFAULT_REQUEST_TIMEOUT
from rasa.utils.endpoints import EndpointConfig

KEEPALIVE_SECONDS = 2.0

# (event loop, endpoint settings) -> the session kept for them
_sessions: Dict[Tuple[asyncio.AbstractEventLoop, str], aiohttp.ClientSession] = {}


class KeptSession:
    """What ``async with endpoint.session()`` enters: the kept session, left open on the way out."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def __aenter__(self) -> aiohttp.ClientSession:
        return self.session

    async def __aexit__(self, kind: Optional[Type[BaseException]], error: Optional[BaseException],
                        trace: Optional[TracebackType]) -> None:
        return None


def kept_session(self: EndpointConfig) -> KeptSession:
    """``EndpointConfig.session`` with the session kept: Rasa's headers, basic auth and timeout
    (``DEFAULT_REQUEST_TIMEOUT``, seconds), one session per running event loop and settings.
    Must be called inside a running event loop (RuntimeError otherwise), as Rasa does."""
    loop = asyncio.get_running_loop()
    key = (loop, json.dumps([self.headers, self.basic_auth], sort_keys=True, default=str))
    session = _sessions.get(key)
    if session is None or session.closed:
        auth = (aiohttp.BasicAuth(self.basic_auth["username"], self.basic_auth["password"])
                if self.basic_auth else None)
        session = aiohttp.ClientSession(
            headers=self.headers, auth=auth, timeout=aiohttp.ClientTimeout(total=DEFAULT_REQUEST_TIMEOUT),
            connector=aiohttp.TCPConnector(keepalive_timeout=KEEPALIVE_SECONDS),
        )
        _sessions[key] = session
    return KeptSession(session)


async def close_sessions() -> None:
    """Close the kept sessions of the running event loop (at the server's stop)."""
    loop = asyncio.get_running_loop()
    for key in [key for key in _sessions if key[0] is loop]:
        await _sessions.pop(key).close()


def install() -> None:
    """Make Rasa's endpoints keep their sessions (idempotent)."""
    setattr(EndpointConfig, "session", kept_session)


__all__ = ["KEEPALIVE_SECONDS", "KeptSession", "close_sessions", "install", "kept_session"]
