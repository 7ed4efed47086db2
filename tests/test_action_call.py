"""The Rasa server sends the action server the conversation's state with its last two user turns only,
and the rest of the call as Rasa builds it (bot/rasa_plugins/action_call.py)."""
from __future__ import annotations

from typing import List

from rasa.core.actions.action import RemoteAction
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, Event, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig
from rasa_sdk import Tracker

from actions.handoff import previous_user_intent
from bot.rasa_plugins import action_call
from bot.settings import PROJECT_ROOT

DOMAIN = Domain.load(str(PROJECT_ROOT / "domain.yml"))
RASAS_OWN = action_call.RASAS_ACTION_CALL_FORMAT


def user(text: str, intent: str) -> UserUttered:
    return UserUttered(text, {"name": intent, "confidence": 0.9}, parse_data={"intent": {"name": intent, "confidence": 0.9}})


def long_conversation() -> List[Event]:
    events: List[Event] = [ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen")]
    for turn in range(30):
        events += [user(f"question {turn}", "faq"), ActionExecuted("action_answer_faq"), BotUttered(f"answer {turn}"),
                   ActionExecuted("action_listen")]
    events += [SlotSet("low_confidence_turns", 2), user("that did not help", "feedback_not_helpful"),
               ActionExecuted("action_record_feedback"), ActionExecuted("action_listen"), user("a person please", "request_human")]
    return events


def test_the_call_carries_rasas_state_with_only_the_last_two_user_turns() -> None:
    tracker = DialogueStateTracker.from_events("visitor-1", long_conversation(), DOMAIN.slots)
    action = RemoteAction("action_request_human", EndpointConfig("http://127.0.0.1:9/webhook"))
    rasas = RASAS_OWN(action, tracker, DOMAIN)
    ours = action_call.action_call_format(action, tracker, DOMAIN)

    assert {k: v for k, v in ours["tracker"].items() if k != "events"} == {
        k: v for k, v in rasas["tracker"].items() if k != "events"
    }
    assert {k: v for k, v in ours.items() if k != "tracker"} == {k: v for k, v in rasas.items() if k != "tracker"}
    assert len(rasas["tracker"]["events"]) == 128
    assert ours["tracker"]["events"] == rasas["tracker"]["events"][-4:]
    # What the actions read is the same from either call.
    for body in (ours, rasas):
        sdk = Tracker.from_dict(body["tracker"])
        assert previous_user_intent(sdk) == "feedback_not_helpful"
        assert sdk.get_slot("low_confidence_turns") == 2 and sdk.latest_message["text"] == "a person please"


def test_a_conversation_with_one_user_message_is_sent_whole() -> None:
    events = [ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen"), user("hi", "greet")]
    tracker = DialogueStateTracker.from_events("visitor-2", events, DOMAIN.slots)
    assert action_call.recent_events(list(tracker.events)) == list(tracker.events)
    assert action_call.recent_events([]) == []


def test_installing_makes_rasas_remote_actions_use_it() -> None:
    action_call.install()
    assert RemoteAction._action_call_format is action_call.action_call_format
