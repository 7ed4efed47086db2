"""Rasa's check of the action server's answers, with its schema checked once instead of on every action.

Rasa 3.6 (``RemoteAction._validate_action_result``, rasa/core/actions/action.py)
calls ``jsonschema.validate(result, schema)`` for every custom action it runs,
and ``validate`` first checks the schema itself against the JSON Schema
meta-schema: a fixed schema of every event type, re-checked each time. A
py-spy profile of the Rasa server under load (bench/README.md, "Cost of a
message") put 32% of its CPU time in that re-check, and 2% in validating the
answer. Here the validator is built, and its schema checked, once per
process; each answer is still validated, with the same error and message.

Installed when Rasa loads the deskmate channel (bot/rasa_plugins/channel.py),
i.e. only in the Rasa server; pinned Rasa (3.6.21) is what this replaces.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Dict, Text

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


def validate_action_result(self: RemoteAction, result: Dict[Text, Any]) -> bool:
    """``RemoteAction._validate_action_result`` with a cached validator: True, or raises ValidationError
    as Rasa's does (``jsonschema.validate``'s best match, with Rasa's hint appended)."""
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


__all__ = ["ValidationError", "action_result_validator", "install", "validate_action_result"]
