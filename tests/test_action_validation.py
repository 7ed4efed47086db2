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
    with mock.patch.object(jsonschema.Draft202012Validator, "check_schema",
                           wraps=jsonschema.Draft202012Validator.check_schema) as checked:
        for _ in range(5):
            assert action._validate_action_result(answer) is True
    assert checked.call_count == 1


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
