"""A socket.io client for tests and benchmarks (the widget's side, in Python).

python-engineio's websocket client passes ``aiohttp.ClientWSTimeout`` (new
in aiohttp 3.10) to ``ws_connect``; rasa pins aiohttp 3.9.5, whose
``ws_connect`` takes the close timeout as a plain number. Giving aiohttp
that name as a function returning the number lets the client use
websockets, as browsers do, instead of long-polling.
"""
from __future__ import annotations

from typing import Any, Optional

import aiohttp
import socketio


def _ws_close_timeout(ws_close: Optional[float] = None, **_: Any) -> float:
    return ws_close if ws_close is not None else 10.0


def socket_client() -> socketio.AsyncClient:
    """An AsyncClient whose websocket transport works with the pinned aiohttp."""
    if not hasattr(aiohttp, "ClientWSTimeout"):
        aiohttp.ClientWSTimeout = _ws_close_timeout  # type: ignore[attr-defined]
    return socketio.AsyncClient(reconnection=False)
