"""When a ticket opens, what the visitor is told, and what the agent receives (actions run with an injected clock)."""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.handoff import hand_off
from bot.handoff.handover import build_handover
from bot.handoff.policy import SupportPolicy
from bot.handoff.service import HandoffService, Trouble, fixed_clock, should_open_ticket
from bot.identity import TOKEN_METADATA_KEY, issue_token
from bot.settings import PROJECT_ROOT
from bot.store.seed import seed_demo_customers
from bot.store.tickets import tickets_for_conversation
from tests.conftest import UNREACHABLE_DATABASE_URL

POLICY = SupportPolicy.load(PROJECT_ROOT / "kb" / "support_policy.yml")
SECRET = "a-shared-secret-of-at-least-32-bytes!!"
TUESDAY_MORNING = datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc)
FRIDAY_NIGHT = datetime(2026, 11, 27, 21, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "trouble, plan, in_a_row, opens",
    [
        (Trouble.REQUESTED, "free", 0, True),
        (Trouble.LOW_CONFIDENCE, "free", 1, False),
        (Trouble.LOW_CONFIDENCE, "standard", 2, True),
        (Trouble.LOW_CONFIDENCE, "premium", 1, True),
        (Trouble.PROBLEM, "standard", 0, False),
        (Trouble.PROBLEM, "premium", 0, True),
        (Trouble.NOT_HELPFUL, "anonymous", 0, True),
    ],
)
def test_when_a_ticket_opens(trouble: Trouble, plan: str, in_a_row: int, opens: bool) -> None:
    assert should_open_ticket(trouble, POLICY.for_plan(plan), in_a_row) is opens


def tracker(sender: str, text: str, token: str = "", events: List[Dict[str, Any]] = ()) -> Tracker:
    latest = {"text": text, "intent": {"name": "request_human", "confidence": 1.0}, "metadata": {}}
    if token:
        latest["metadata"] = {TOKEN_METADATA_KEY: token}
    user = {"event": "user", "text": text, "parse_data": latest, "timestamp": TUESDAY_MORNING.timestamp()}
    return Tracker(sender, {}, latest, [*events, user], False, None, {}, "action_listen")


def run_hand_off(service: HandoffService, track: Tracker, trouble: Trouble) -> CollectingDispatcher:
    dispatcher = CollectingDispatcher()
    visitor = service.visitor(track.latest_message.get("metadata"))
    asyncio.run(hand_off(dispatcher, track, service, visitor, trouble))
    return dispatcher


@pytest.fixture
def seeded_url(database_url: str) -> str:
    seed_demo_customers(database_url, PROJECT_ROOT / "kb" / "demo_customers.yml", TUESDAY_MORNING)
    return database_url


def test_free_user_in_business_hours_is_promised_a_reply_within_two_business_days(seeded_url: str) -> None:
    service = HandoffService(seeded_url, SECRET, POLICY, fixed_clock(TUESDAY_MORNING))
    dispatcher = run_hand_off(service, tracker("c-1", "human please", issue_token(SECRET, "free@demo.example")), Trouble.REQUESTED)
    [message] = dispatcher.messages
    assert message["response"] == "utter_ticket_opened" and message["reply_time"] == "2 business days"
    assert message["hours"] == "Monday to Friday, 08:00 to 20:00 UTC"
    [ticket] = tickets_for_conversation(seeded_url, "c-1")
    assert ticket.sla_due_at == datetime(2026, 11, 26, 10, 0, tzinfo=timezone.utc)


def test_standard_user_on_friday_night_is_told_when_the_team_is_back(seeded_url: str) -> None:
    service = HandoffService(seeded_url, SECRET, POLICY, fixed_clock(FRIDAY_NIGHT))
    token = issue_token(SECRET, "standard@demo.example")
    [message] = run_hand_off(service, tracker("c-2", "agent", token), Trouble.REQUESTED).messages
    assert message["response"] == "utter_ticket_opened_out_of_hours"
    assert message["opens_at"] == "Monday 30 November, 08:00 UTC"
    assert message["due"] == "Monday 30 November, 20:00 UTC"


def test_premium_user_at_night_gets_an_agent_within_five_minutes(seeded_url: str) -> None:
    service = HandoffService(seeded_url, SECRET, POLICY, fixed_clock(FRIDAY_NIGHT))
    token = issue_token(SECRET, "premium@demo.example")
    [message] = run_hand_off(service, tracker("c-3", "agent", token), Trouble.REQUESTED).messages
    assert message["response"] == "utter_ticket_opened_priority" and message["reply_time"] == "5 minutes"
    assert message["custom"]["deskmate"]["priority"] == "high"


def test_a_database_that_is_down_is_said_plainly_and_the_visitor_gets_another_way(tmp_path: Path) -> None:
    service = HandoffService(
        UNREACHABLE_DATABASE_URL, SECRET, POLICY, fixed_clock(TUESDAY_MORNING)
    )
    messages = run_hand_off(service, tracker("c-4", "human please"), Trouble.REQUESTED).messages
    assert messages[0]["response"] == "utter_ticket_failed"
    assert messages[1]["custom"]["deskmate"]["type"] == "contact"


def test_the_handover_carries_transcript_guesses_and_articles_shown() -> None:
    parse = {
        "intent_ranking": [{"name": "faq", "confidence": 0.6}, {"name": "nlu_fallback", "confidence": 0.5},
                           {"name": "greet", "confidence": 0.3}, {"name": "deny", "confidence": 0.1}],
        "response_selector": {"faq": {"ranking": [
            {"intent_response_key": "faq/double-charge", "confidence": 0.4},
            {"intent_response_key": "faq/refund-policy", "confidence": 0.3},
            {"intent_response_key": "faq/invoices", "confidence": 0.2},
            {"intent_response_key": "faq/gift-cards-promo", "confidence": 0.1}]}},
    }
    events = [
        {"event": "user", "text": "money thing", "parse_data": parse, "timestamp": 1},
        {"event": "bot", "text": "Is it one of these?", "timestamp": 2,
         "data": {"custom": {"deskmate": {"type": "suggestions", "article_ids": ["double-charge", "invoices"]}}}},
        {"event": "user", "text": "agent", "parse_data": {}, "timestamp": 3},
    ]
    handover = build_handover(events, None, "requested", "no token")
    assert [e["from"] for e in handover["transcript"]] == ["visitor", "bot", "visitor"]
    [failed] = handover["failed_messages"]
    assert failed["text"] == "money thing"
    assert [g["name"] for g in failed["intents"]] == ["faq", "greet", "deny"]
    assert [g["article_id"] for g in failed["articles"]] == ["double-charge", "refund-policy", "invoices"]
    assert handover["articles_shown"] == ["double-charge", "invoices"]
    assert handover["customer"] == {"anonymous": True}
