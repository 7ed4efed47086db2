"""What an agent needs so the visitor never repeats themselves, read from the conversation.

Built from Rasa's tracker events at the moment a ticket opens: the
transcript, the customer, why the bot stepped aside, the bot's top guesses
(intents and articles, with confidences) for each message it could not
answer, and the articles it already showed.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Dict, Iterable, List, Mapping, Optional

from bot.kb.importer import RETRIEVAL_INTENT, article_id_from_intent_key
from bot.store.customers import CustomerRecord

PAYLOAD_KEY = "deskmate"
# Bot messages of these kinds mean the bot could not answer the message before them.
UNANSWERED_KINDS = ("suggestions", "rephrase")
GUESSES = 3
# Long conversations: the agent sees the latest turns (the whole history stays in Rasa's tracker store).
MAX_TRANSCRIPT_ENTRIES = 200


def deskmate_payload(event: Mapping[str, Any]) -> Dict[str, Any]:
    """The machine-readable ``deskmate`` payload of a bot event, if any."""
    custom = (event.get("data") or {}).get("custom") or {}
    payload = custom.get(PAYLOAD_KEY) if isinstance(custom, dict) else None
    return payload if isinstance(payload, dict) else {}


def _when(event: Mapping[str, Any]) -> Optional[str]:
    stamp = event.get("timestamp")
    if not isinstance(stamp, (int, float)):
        return None
    return datetime.fromtimestamp(stamp, timezone.utc).isoformat()


def top_guesses(parse_data: Mapping[str, Any]) -> Dict[str, List[Dict[str, Any]]]:
    """The classifier's three best intents and the selector's three best articles."""
    intents = [
        {"name": item.get("name"), "confidence": round(float(item.get("confidence") or 0.0), 4)}
        for item in (parse_data.get("intent_ranking") or [])
        if item.get("name") != "nlu_fallback"
    ][:GUESSES]
    selector = ((parse_data.get("response_selector") or {}).get(RETRIEVAL_INTENT) or {}).get("ranking") or []
    articles = [
        {"article_id": article_id, "confidence": round(float(item.get("confidence") or 0.0), 4)}
        for item in selector
        for article_id in [article_id_from_intent_key(item.get("intent_response_key") or "")]
        if article_id
    ][:GUESSES]
    return {"intents": intents, "articles": articles}


def transcript(events: Iterable[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """Who said what, oldest first, with the article each bot answer came from."""
    entries: List[Dict[str, Any]] = []
    for event in events:
        kind = event.get("event")
        if kind == "user":
            entries.append({"from": "visitor", "text": event.get("text") or "", "at": _when(event)})
        elif kind == "bot":
            entry: Dict[str, Any] = {"from": "bot", "text": event.get("text") or "", "at": _when(event)}
            payload = deskmate_payload(event)
            if payload.get("type"):
                entry["kind"] = payload["type"]
            if payload.get("article_id"):
                entry["article_id"] = payload["article_id"]
            entries.append(entry)
    return entries[-MAX_TRANSCRIPT_ENTRIES:]


def failed_messages(events: List[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """The visitor's messages the bot could not answer, each with its top guesses."""
    failures: List[Dict[str, Any]] = []
    last_user: Optional[Mapping[str, Any]] = None
    for event in events:
        if event.get("event") == "user":
            last_user = event
        elif event.get("event") == "bot" and last_user is not None:
            if deskmate_payload(event).get("type") in UNANSWERED_KINDS:
                failures.append({"text": last_user.get("text") or "", **top_guesses(last_user.get("parse_data") or {})})
                last_user = None
    return failures


def articles_shown(events: Iterable[Mapping[str, Any]]) -> List[str]:
    """Every article the bot answered or offered, in order, without repeats."""
    shown: List[str] = []
    for event in events:
        if event.get("event") != "bot":
            continue
        payload = deskmate_payload(event)
        for article_id in [payload.get("article_id"), *(payload.get("article_ids") or [])]:
            if article_id and article_id not in shown:
                shown.append(str(article_id))
    return shown


def customer_summary(customer: Optional[CustomerRecord]) -> Dict[str, Any]:
    """The customer as the agent sees them (anonymous when the bot does not know who it is)."""
    if customer is None:
        return {"anonymous": True}
    return {
        "anonymous": False,
        "id": customer.id,
        "email": customer.email,
        "name": customer.name,
        "plan": customer.plan,
        "status": customer.status,
        "billing_period": customer.billing_period,
        "renews_at": customer.renews_at.isoformat() if customer.renews_at else None,
        "trial_ends_at": customer.trial_ends_at.isoformat() if customer.trial_ends_at else None,
    }


def pending_bot_events(messages: Iterable[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """Messages an action has dispatched this turn, as the bot events Rasa will record."""
    return [
        {"event": "bot", "text": message.get("text") or "", "data": {"custom": message.get("custom") or {}}}
        for message in messages
        if message.get("text") or message.get("custom")
    ]


def build_handover(
    events: List[Mapping[str, Any]],
    customer: Optional[CustomerRecord],
    reason: str,
    identity_note: str,
    latest_failed: bool = False,
) -> Dict[str, Any]:
    """The handover an agent reads first (stored on the ticket as JSON).

    ``latest_failed``: the visitor's latest message is one the bot could not
    answer (the ticket replaces the suggestions it would have shown).
    """
    failures = failed_messages(events)
    users = [event for event in events if event.get("event") == "user"]
    if latest_failed and users and not (failures and failures[-1]["text"] == (users[-1].get("text") or "")):
        failures.append({"text": users[-1].get("text") or "", **top_guesses(users[-1].get("parse_data") or {})})
    return {
        "reason": reason,
        "customer": customer_summary(customer),
        "identity": identity_note,
        "transcript": transcript(events),
        "failed_messages": failures,
        "articles_shown": articles_shown(events),
    }
