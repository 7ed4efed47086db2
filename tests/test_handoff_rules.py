"""When a ticket opens, what the visitor is told, and what the agent receives (actions run with an injected clock)."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, List

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.escalation import hand_off
from bot.clock import fixed_clock
from bot.handoff.handover import build_handover
from bot.handoff.policy import SupportPolicy
from bot.handoff.rules import Signal, Situation, should_open_ticket
from bot.handoff.service import HandoffService
from bot.identity import TOKEN_METADATA_KEY, issue_token
from bot.protocol import TicketReason
from bot.settings import PROJECT_ROOT
from bot.store.database import Store
from bot.store.messages import NewMessage, conversation_messages, record_messages
from bot.store.presence import agent_connected
from bot.store.seed import seed_demo_customers
from bot.store.staff import add_staff
from bot.store.tickets import TicketRequest, open_ticket, tickets_for_conversation
from tests.conftest import UNREACHABLE_DATABASE_URL

POLICY = SupportPolicy.load(PROJECT_ROOT / "kb" / "support_policy.yml")
SECRET = "a-shared-secret-of-at-least-32-bytes!!"
TUESDAY_MORNING = datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc)
FRIDAY_NIGHT = datetime(2026, 11, 27, 21, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "situation, plan, reason",
    [
        (Situation(Signal.ASKED_FOR_PERSON), "free", TicketReason.REQUESTED),
        (Situation(Signal.ASKED_FOR_PERSON, after_not_helpful=True), "anonymous", TicketReason.NOT_HELPFUL),
        (Situation(Signal.UNSURE, unsure_in_a_row=1), "free", None),
        (Situation(Signal.UNSURE, unsure_in_a_row=2), "standard", TicketReason.LOW_CONFIDENCE),
        (Situation(Signal.UNSURE, unsure_in_a_row=1), "premium", TicketReason.LOW_CONFIDENCE),
        (Situation(Signal.PROBLEM_ANSWERED), "standard", None),
        (Situation(Signal.PROBLEM_ANSWERED), "premium", TicketReason.PROBLEM),
        (Situation(Signal.NOT_HELPFUL), "free", None),
        (Situation(Signal.NOT_HELPFUL), "premium", TicketReason.NOT_HELPFUL),
        (Situation(Signal.BOT_UNREACHABLE), "anonymous", TicketReason.BOT_UNAVAILABLE),
    ],
)
def test_when_a_ticket_opens_and_why(situation: Situation, plan: str, reason: TicketReason) -> None:
    assert should_open_ticket(situation, POLICY.for_plan(plan)) is reason


def tracker(sender: str, text: str, token: str = "", events: List[Dict[str, Any]] = ()) -> Tracker:
    latest = {"text": text, "intent": {"name": "request_human", "confidence": 1.0}, "metadata": {}}
    if token:
        latest["metadata"] = {TOKEN_METADATA_KEY: token}
    user = {"event": "user", "text": text, "parse_data": latest, "timestamp": TUESDAY_MORNING.timestamp()}
    return Tracker(sender, {}, latest, [*events, user], False, None, {}, "action_listen")


def run_hand_off(service: HandoffService, track: Tracker, reason: TicketReason) -> CollectingDispatcher:
    dispatcher = CollectingDispatcher()
    visitor = service.visitor(track.latest_message.get("metadata"))
    asyncio.run(hand_off(dispatcher, track, service, visitor, reason))
    return dispatcher


@pytest.fixture
def seeded(store: Store) -> Store:
    seed_demo_customers(store, PROJECT_ROOT / "kb" / "demo_customers.yml", TUESDAY_MORNING)
    return store


def sign_in_agent(store: Store, now: datetime, email: str = "ines@support.example") -> None:
    """An agent with the inbox open (as the gateway records an agent socket)."""
    add_staff(store, email, "Ines", "agent", "correct horse battery", now)
    agent_connected(store, "gateway-a", f"sid-{email}", email, now, timedelta(seconds=30))


def test_free_user_in_business_hours_is_promised_a_reply_within_two_business_days(seeded: Store) -> None:
    sign_in_agent(seeded, TUESDAY_MORNING)
    service = HandoffService(seeded, SECRET, POLICY, fixed_clock(TUESDAY_MORNING))
    dispatcher = run_hand_off(service, tracker("c-1", "human please", issue_token(SECRET, "free@demo.example")), TicketReason.REQUESTED)
    [message] = dispatcher.messages
    assert message["response"] == "utter_ticket_opened" and message["reply_time"] == "2 business days"
    assert message["hours"] == "Monday to Friday, 08:00 to 20:00 UTC"
    [ticket] = tickets_for_conversation(seeded, "c-1")
    assert ticket.sla_due_at == datetime(2026, 11, 26, 10, 0, tzinfo=timezone.utc)


def test_standard_user_on_friday_night_is_told_when_the_team_is_back(seeded: Store) -> None:
    service = HandoffService(seeded, SECRET, POLICY, fixed_clock(FRIDAY_NIGHT))
    token = issue_token(SECRET, "standard@demo.example")
    [message] = run_hand_off(service, tracker("c-2", "agent", token), TicketReason.REQUESTED).messages
    assert message["response"] == "utter_ticket_opened_out_of_hours"
    assert message["opens_at"] == "Monday 30 November, 08:00 UTC"
    assert message["due"] == "Monday 30 November, 20:00 UTC"


def test_in_business_hours_with_nobody_signed_in_the_visitor_is_given_the_due_time(seeded: Store) -> None:
    service = HandoffService(seeded, SECRET, POLICY, fixed_clock(TUESDAY_MORNING))
    token = issue_token(SECRET, "free@demo.example")
    [message] = run_hand_off(service, tracker("c-5", "human please", token), TicketReason.REQUESTED).messages
    assert message["response"] == "utter_ticket_opened_no_agent" and message["agents"] == 0
    assert message["due"] == "Thursday 26 November, 10:00 UTC"
    assert message["custom"]["deskmate"]["promise"] == "business_no_agent"


def test_premium_user_at_night_gets_an_agent_within_five_minutes_when_one_is_signed_in(seeded: Store) -> None:
    sign_in_agent(seeded, FRIDAY_NIGHT)
    service = HandoffService(seeded, SECRET, POLICY, fixed_clock(FRIDAY_NIGHT))
    token = issue_token(SECRET, "premium@demo.example")
    [message] = run_hand_off(service, tracker("c-3", "agent", token), TicketReason.REQUESTED).messages
    assert message["response"] == "utter_ticket_opened_priority" and message["reply_time"] == "5 minutes"
    assert message["custom"]["deskmate"]["priority"] == "high"
    assert message["custom"]["deskmate"]["promise"] == "priority"


def test_a_database_that_is_down_is_said_plainly_and_the_visitor_gets_another_way(tmp_path: Path) -> None:
    service = HandoffService(Store(UNREACHABLE_DATABASE_URL), SECRET, POLICY, fixed_clock(TUESDAY_MORNING))
    messages = run_hand_off(service, tracker("c-4", "human please"), TicketReason.REQUESTED).messages
    assert messages[0]["response"] == "utter_ticket_failed"
    assert messages[1]["custom"]["deskmate"]["type"] == "contact"


def test_the_handover_is_read_from_the_stored_conversation_with_the_guesses_the_bot_kept(store: Store) -> None:
    guesses = {
        "intents": [{"name": "faq", "confidence": 0.6}, {"name": "greet", "confidence": 0.3}],
        "articles": [{"article_id": "double-charge", "confidence": 0.4}, {"article_id": "refund-policy", "confidence": 0.3}],
    }
    ticket = open_ticket(store, TicketRequest(
        conversation_id="c-5", plan="anonymous", priority="normal", reason="requested",
        sla_due_at=TUESDAY_MORNING, handover={"reason": "requested", "customer": {"anonymous": True}, "identity": "no token"},
    ), TUESDAY_MORNING).ticket

    def bot(text: str, payload: Dict[str, Any]) -> NewMessage:
        return NewMessage("bot", text, {"quick_replies": [], "metadata": {"deskmate": payload}})

    record_messages(store, "c-5", [
        NewMessage("visitor", "money thing"),
        bot("Is it one of these?", {"type": "suggestions", "article_ids": ["double-charge", "invoices"], "guesses": guesses}),
        NewMessage("visitor", "agent"),
        bot("I've passed this to our support team", {"type": "handoff", "ticket": ticket.id}),
        NewMessage("visitor", "are you there"),
        bot("Here is an article", {"type": "article", "article_id": "refund-policy"}),
    ], TUESDAY_MORNING)
    handover = build_handover(ticket, conversation_messages(store, "c-5"))
    [failed] = handover["failed_messages"]
    assert failed == {"text": "money thing", **guesses}
    # Up to the turn that handed the conversation over: the later answer is not part of it.
    assert handover["articles_shown"] == ["double-charge", "invoices"]
    assert (handover["reason"], handover["customer"], handover["identity"]) == ("requested", {"anonymous": True}, "no token")
