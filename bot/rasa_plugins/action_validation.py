"""Rasa's check of the action server's answers, with its schema checked once instead of on every action.

Rasa 3.6 (``RemoteAction._validate_action_result``, rasa/core/actions/action.py)
calls ``jsonschema.validate(result, schema)`` for every custom action it runs,
and ``validate`` first checks the schema itself against the JSON Schema
meta-schema: a fixed schema of every event type, re-checked each time. A
py-spy profile of the Rasa server under load (bench/README.md, "Cost of a
message") put 32% of its CPU time in that re-check, and 2% in validating the
answer. Here the validator is built, and its schema checked, once per
process; each answer is still validated, with the same error and message.

After that cut, validating the answer itself was still 5.6% of a Rasa server's
CPU on the scaled setting (bench/README.md, "Cost of a message"): the schema
checks each event against a ``oneOf`` of all 23 event types, each a branch
whose ``event`` property is a different constant, so every event is validated
23 times to find the one branch that fits. An answer is first checked the
short way: the schema without the ``oneOf``, then each event against the one
branch its ``event`` names. That is the same verdict: an event is an object
whose ``event`` is a string (the common part), and a branch naming another
constant fails on it, so "exactly one branch" means "the branch it names".
Only an answer that fails the short way is checked in full, for Rasa's own
error; a schema not of that shape (another Rasa) is always checked in full.

Installed when Rasa loads the deskmate channel (bot/rasa_plugins/channel.py),
i.e. only in the Rasa server; pinned Rasa (3.6.21) is what this replaces.
"""
from __future__ import annotations

import copy
import json
from functools import lru_cache
from typing import Any, Dict, Optional, Text, Tuple

from jsonschema import ValidationError, validators
from jsonschema.exceptions import best_match
from rasa.shared.constants import DOCS_BASE_URL
from rasa.core.actions.action import RemoteAction


@lru_cache(maxsize=1)
def action_result_validator() -> Any:
    """The validator of an action server's answer (Rasa's schema, checked once)."""
    schema = RemoteAction.action_response_format_spec()
    kind = validators.validator_for(schema)
    kind.check_schema(schema)
    return kind(schema)


@lru_cache(maxsize=1)
def event_type_validators() -> Optional[Tuple[Any, Dict[str, Any]]]:
    """(a validator of the answer with each event's common part only, {event type: its branch's
    validator}), or None when Rasa's schema is not a ``oneOf`` of branches each naming its own
    ``event`` constant (then every answer is checked in full)."""
    schema = RemoteAction.action_response_format_spec()
    if "$ref" in json.dumps(schema):
        return None
    kind = validators.validator_for(schema)
    try:
        items = schema["properties"]["events"]["items"]
        branches = items["oneOf"]
        if "event" not in items.get("required", []) or items["properties"]["event"] != {"type": "string"}:
            return None
    except (KeyError, TypeError):
        return None
    by_type: Dict[str, Any] = {}
    for branch in branches:
        constant = branch.get("properties", {}).get("event", {}).get("const")
        if not isinstance(constant, str) or constant in by_type:
            return None
        kind.check_schema(branch)
        by_type[constant] = kind(branch)
    common = copy.deepcopy(schema)
    del common["properties"]["events"]["items"]["oneOf"]
    kind.check_schema(common)
    return kind(common), by_type


def valid_by_event_type(result: Any) -> Optional[bool]:
    """Whether ``result`` fits Rasa's schema, checked the short way (module docstring); None when the
    schema is not of the shape that allows it."""
    short_way = event_type_validators()
    if short_way is None:
        return None
    common, by_type = short_way
    if not common.is_valid(result):
        return False
    for event in result.get("events", ()):
        branch = by_type.get(event["event"])  # an object with a string "event": the common part says so
        if branch is None or not branch.is_valid(event):
            return False
    return True


def validate_action_result(self: RemoteAction, result: Dict[Text, Any]) -> bool:
    """``RemoteAction._validate_action_result`` with a cached validator: True, or raises ValidationError
    as Rasa's does (``jsonschema.validate``'s best match, with Rasa's hint appended)."""
    if valid_by_event_type(result):
        return True
    error = best_match(action_result_validator().iter_errors(result))
    if error is None:
        return True
    error.message += (
        f". Failed to validate Action server response from API, "
        f"make sure your response from the Action endpoint is valid. "
        f"For more information about the format visit "
        f"{DOCS_BASE_URL}/custom-actions"
    )
    raise error


def install() -> None:
    """Make Rasa's remote actions use ``validate_action_result`` (idempotent)."""
    setattr(RemoteAction, "_validate_action_result", validate_action_result)


__all__ = ["ValidationError", "action_result_validator", "event_type_validators", "install", "valid_by_event_type",
           "validate_action_result"]
