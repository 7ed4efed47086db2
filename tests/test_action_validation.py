"""Rasa still checks every answer of the action server, with the schema checked once per process."""
from __future__ import annotations

from unittest import mock

import jsonschema
import pytest
from rasa.core.actions.action import RemoteAction
from rasa.utils.endpoints import EndpointConfig

from bot.rasa_plugins import action_validation


def remote_action() -> RemoteAction:
    action_validation.install()
    return RemoteAction("action_answer", EndpointConfig("http://127.0.0.1:9/webhook"))


def test_a_valid_answer_passes_and_the_schema_is_checked_only_once() -> None:
    action = remote_action()
    answer = {"events": [{"event": "slot", "name": "ticket_open", "value": True}], "responses": [{"text": "hi"}]}
    action_validation.action_result_validator.cache_clear()
    action_validation.event_type_validators.cache_clear()
    with mock.patch.object(jsonschema.Draft202012Validator, "check_schema",
                           wraps=jsonschema.Draft202012Validator.check_schema) as checked:
        assert action._validate_action_result(answer) is True
        built = checked.call_count
        for _ in range(5):
            assert action._validate_action_result(answer) is True
    assert built >= 1 and checked.call_count == built, "the schemas are checked when first used, never again"


@pytest.mark.parametrize("answer", [
    {"events": [{"event": "no_such_event"}]},
    {"events": "not a list"},
    {"responses": [42]},
])
def test_an_invalid_answer_is_refused_with_rasas_message(answer: dict) -> None:
    action = remote_action()
    with pytest.raises(jsonschema.ValidationError) as refused:
        action._validate_action_result(answer)
    assert "Failed to validate Action server response" in refused.value.message
    # The same verdict as Rasa's own check (jsonschema.validate against the same schema).
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(answer, RemoteAction.action_response_format_spec())


def real_events() -> list:
    """One event of each kind Rasa's schema names, as Rasa serialises them (rasa.shared.core.events)."""
    from rasa.shared.core import events as e

    made = [
        e.UserUttered("hi", {"name": "greet", "confidence": 0.9}, [{"entity": "plan", "value": "premium", "start": 0, "end": 2}],
                      parse_data={"intent": {"name": "greet", "confidence": 0.9}, "text": "hi"}),
        e.ActionExecuted("action_listen", policy="RulePolicy", confidence=1.0), e.SlotSet("ticket_open", True),
        e.EntitiesAdded([{"entity": "plan", "value": "premium"}]), e.ReminderScheduled("greet", __import__("datetime").datetime(2030, 1, 1)),
        e.ReminderCancelled("reminder"), e.ActionExecutionRejected("action_x"), e.LoopInterrupted(True),
        e.ActiveLoop("form"), e.AllSlotsReset(), e.ConversationResumed(), e.ConversationPaused(),
        e.FollowupAction("action_x"), e.StoryExported(), e.Restarted(), e.UserUtteranceReverted(), e.ActionReverted(),
        e.BotUttered("hello", {"custom": {"deskmate": {"type": "article", "article_id": "invoices"}}}),
        e.SessionStarted(), e.AgentUttered("hi", {}),
    ]
    return [event.as_dict() for event in made]


def answer_variants() -> list:
    """Valid answers, and invalid ones made from them: each field of each event given a wrong type or
    removed, each event renamed to every other kind, and broken outer shapes."""
    events = real_events()
    kinds = sorted({event["event"] for event in events}) + ["form", "form_validation", "user_featurization", "nope"]
    answers: list = [{"events": events, "responses": [{"text": "hi"}]}, {}, {"events": []}, {"responses": []}]
    for event in events:
        answers.append({"events": [event]})
        for key in event:
            for wrong in (12345, None, [], "x", {"a": 1}, True, 1.5):
                answers.append({"events": [{**event, key: wrong}]})
            answers.append({"events": [{k: v for k, v in event.items() if k != key}]})
        for kind in kinds:
            answers.append({"events": [{**event, "event": kind}]})
    answers += [None, [], "x", {"events": "x"}, {"events": [1]}, {"events": [None]}, {"responses": [42]},
                {"events": [{}]}, {"events": [{"event": 3}]}, {"responses": "x"}, {"events": events + [{"event": "nope"}]}]
    return answers


def test_the_short_check_by_event_type_gives_jsonschemas_verdict_on_every_variant() -> None:
    full = jsonschema.validators.validator_for(RemoteAction.action_response_format_spec())(
        RemoteAction.action_response_format_spec())
    assert action_validation.event_type_validators() is not None, "Rasa's schema has the shape the short check needs"
    variants = answer_variants()
    verdicts = [(action_validation.valid_by_event_type(answer), full.is_valid(answer)) for answer in variants]
    assert len(variants) > 1000 and sum(ours for ours, _ in verdicts) > 100 and sum(not v for _, v in verdicts) > 100
    assert [answer for answer, (ours, theirs) in zip(variants, verdicts) if ours != theirs] == []
