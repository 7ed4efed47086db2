"""The audit trail: who did what to what, when and from where (sign-ins, ticket actions, leads' changes).

``actor`` is a staff e-mail, ``cli:<user>`` for the command line, or
"system"; ``action`` is one of ``ACTIONS``; ``target`` names what was acted
on ("ticket #12", an e-mail, an article id). Rows are only ever added.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Dict, List, Mapping, Optional

from sqlalchemy import select

from bot.store.database import Store, store_errors
from bot.store.models import AuditEvent
from bot.store.period import Moment, in_period, period_bounds

ACTIONS = (
    "sign_in", "sign_in_failed", "sign_in_locked", "sign_out", "second_factor_failed",
    "second_factor_on", "second_factor_off", "unlock",
    "claim", "reply", "resolve", "hand_back",
    "decide_miss", "retrain", "article_edit",
    "staff_add", "staff_disable", "staff_enable", "staff_role", "staff_password", "team_setting",
    "erase",
    "review_answer",
    "reopen", "note", "saved_reply", "merge",  # the agents' working day (issue 14)
)


@dataclass(frozen=True)
class AuditRecord:
    """One audit event (a plain copy)."""

    id: int
    at: datetime
    actor: str
    action: str
    target: Optional[str]
    address: Optional[str]
    detail: Optional[Dict[str, Any]]


def _record(row: AuditEvent) -> AuditRecord:
    return AuditRecord(row.id, row.at, row.actor, row.action, row.target, row.address, row.detail)


def audit(
    store: Store, actor: str, action: str, now: datetime, target: Optional[str] = None,
    address: Optional[str] = None, detail: Optional[Mapping[str, Any]] = None,
) -> AuditRecord:
    """Add one event. Raises ValueError for an unknown action or a naive ``now``, StoreUnavailableError."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    row = AuditEvent(at=now, actor=actor[:330], action=action, target=(target or None) and target[:330],
                     address=(address or None) and address[:64], detail=dict(detail) if detail else None)
    with store_errors("record an audit event"), store.session() as session, session.begin():
        session.add(row)
        session.flush()
        return _record(row)


def audit_events(
    store: Store, since: Optional[Moment] = None, until: Optional[Moment] = None, actor: Optional[str] = None,
    action: Optional[str] = None, limit: int = 1000,
) -> List[AuditRecord]:
    """Events in the period (dates: whole UTC days), newest first, filtered by actor (part of it) and action."""
    start, end = period_bounds(since, until)
    query = select(AuditEvent).where(*in_period(AuditEvent.at, start, end))
    if actor:
        query = query.where(AuditEvent.actor.contains(actor.strip().lower(), autoescape=True))
    if action:
        query = query.where(AuditEvent.action == action)
    query = query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit)
    with store_errors("read the audit trail"), store.session() as session:
        return [_record(row) for row in session.scalars(query)]
