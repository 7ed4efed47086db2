"""Who a widget conversation belongs to: fixed by its first message, checked on every later one."""
from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Optional

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.store.database import Store, store_errors
from bot.store.models import ConversationOwner

ANONYMOUS_OWNER = "anonymous"


def owner_of(customer_key: Optional[str]) -> str:
    """The owner a message's verified identity stands for: "anonymous", or "customer:<sha256 hex>"
    of the token's subject (the store keeps no second copy of the customer's key)."""
    if customer_key is None:
        return ANONYMOUS_OWNER
    return "customer:" + hashlib.sha256(customer_key.encode("utf-8")).hexdigest()[:64]


def conversation_owner(store: Store, conversation_id: str) -> Optional[str]:
    """The conversation's recorded owner ("anonymous" or "customer:<hash>"), or None before its first
    message. Raises StoreUnavailableError."""
    query = select(ConversationOwner.owner).where(ConversationOwner.conversation_id == conversation_id)
    with store_errors("read a conversation's owner"), store.session() as session:
        owner = session.scalar(query)
    return None if owner is None else str(owner)


def claim_conversation(store: Store, conversation_id: str, owner: str, now: datetime) -> str:
    """The conversation's owner: ``owner`` when it had none yet (it is recorded), else the one it has.

    Safe when two gateways claim at once (one insert wins; the other reads it). Raises StoreUnavailableError.
    """
    query = select(ConversationOwner.owner).where(ConversationOwner.conversation_id == conversation_id)
    with store_errors("read a conversation's owner"):
        with store.session() as session:
            current = session.scalar(query)
        if current is not None:
            return str(current)
        try:
            with store.session() as session, session.begin():
                session.add(ConversationOwner(conversation_id=conversation_id, owner=owner, since=now))
        except IntegrityError:
            with store.session() as session:
                return str(session.scalar(query))
    return owner
