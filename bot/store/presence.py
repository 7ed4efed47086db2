"""Who of the support team is signed in to the inbox right now, across every gateway process.

Each gateway records its open agent-inbox sockets (``agent_presence``): a row on connect, refreshed
every few seconds (``heartbeat``), deleted on disconnect or when the gateway stops. Every row carries an
expiry, so a gateway that was killed without saying so stops counting within ``ttl``. Works on every
deployment (one database, with or without Redis), and the action server reads it too: that is where
the promise to a visitor is made (bot/handoff/service.py).
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Mapping

from sqlalchemy import delete, func, select

from bot.store.customers import normalise_email
from bot.store.database import Store, store_errors
from bot.store.models import AgentPresence, Staff


def _socket_key(gateway_id: str, sid: str) -> str:
    return f"{gateway_id}:{sid}"


def agent_connected(store: Store, gateway_id: str, sid: str, staff_email: str, now: datetime, ttl: timedelta) -> None:
    """A staff member's inbox socket ``sid`` opened on gateway ``gateway_id``: live until ``now + ttl``
    unless refreshed. Raises StoreUnavailableError."""
    key = _socket_key(gateway_id, sid)
    with store_errors("record an agent's presence"), store.session() as session, session.begin():
        row = session.get(AgentPresence, key)
        if row is None:
            session.add(AgentPresence(
                socket_id=key, gateway_id=gateway_id, staff_email=normalise_email(staff_email),
                connected_at=now, last_seen_at=now, expires_at=now + ttl,
            ))
        else:
            row.last_seen_at, row.expires_at = now, now + ttl


def agent_disconnected(store: Store, gateway_id: str, sid: str) -> None:
    """The socket closed: its staff member no longer counts through it. Raises StoreUnavailableError."""
    with store_errors("record an agent leaving"), store.session() as session, session.begin():
        session.execute(delete(AgentPresence).where(AgentPresence.socket_id == _socket_key(gateway_id, sid)))


def heartbeat(store: Store, gateway_id: str, sockets: Mapping[str, str], now: datetime, ttl: timedelta) -> None:
    """Gateway ``gateway_id``'s open inbox sockets now (``sockets``: sid -> staff e-mail), in one transaction:
    each is live until ``now + ttl``, its rows of sockets no longer open are deleted, and rows of any
    gateway that expired a ``ttl`` ago or more are cleared away. Raises StoreUnavailableError."""
    keys = {_socket_key(gateway_id, sid): email for sid, email in sockets.items()}
    with store_errors("refresh the agents' presence"), store.session() as session, session.begin():
        rows = {row.socket_id: row for row in session.scalars(
            select(AgentPresence).where(AgentPresence.gateway_id == gateway_id))}
        for key, row in rows.items():
            if key in keys:
                row.last_seen_at, row.expires_at = now, now + ttl
            else:
                session.delete(row)
        for key, email in keys.items():
            if key not in rows:
                session.add(AgentPresence(
                    socket_id=key, gateway_id=gateway_id, staff_email=normalise_email(email),
                    connected_at=now, last_seen_at=now, expires_at=now + ttl,
                ))
        session.execute(delete(AgentPresence).where(AgentPresence.expires_at < now - ttl))


def gateway_stopped(store: Store, gateway_id: str) -> None:
    """Gateway ``gateway_id`` stops: none of its sockets count any more. Raises StoreUnavailableError."""
    with store_errors("clear a gateway's agents"), store.session() as session, session.begin():
        session.execute(delete(AgentPresence).where(AgentPresence.gateway_id == gateway_id))


def agents_online(store: Store, now: datetime) -> int:
    """How many staff members (not sockets: one agent with two tabs is one) have an inbox open at ``now``
    on any gateway, disabled accounts left out. Raises StoreUnavailableError."""
    query = (
        select(func.count(func.distinct(AgentPresence.staff_email)))
        .join(Staff, Staff.email == AgentPresence.staff_email)
        .where(AgentPresence.expires_at > now, Staff.disabled.is_(False))
    )
    with store_errors("count the agents online"), store.session() as session:
        return int(session.scalar(query) or 0)
