"""Whether a visitor is online now: a widget of the conversation has its socket connected.

Each widget socket joins its conversation's room (bot/gateway/visitor_socket.py). socket.io's manager
knows the rooms of this gateway's own sockets only: with one gateway (``make run``) that is the whole
answer; with several (DESKMATE_REDIS_URL set) a widget on another gateway is not seen here, so a
conversation not found here is "unknown", never "offline".
"""
from __future__ import annotations

from typing import Optional

import socketio

VISITOR_NAMESPACE = "/"


def visitor_online(sio: socketio.AsyncServer, conversation_id: str, several_gateways: bool) -> Optional[bool]:
    """True when a widget socket of ``conversation_id`` is connected to this gateway; else False with one
    gateway, None (unknown) when ``several_gateways``."""
    rooms = getattr(sio.manager, "rooms", {}).get(VISITOR_NAMESPACE, {})
    if rooms.get(conversation_id):
        return True
    return None if several_gateways else False
