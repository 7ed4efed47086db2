"""What the Rasa server sends the action server: the conversation's state and its last turns, not its whole history.

Rasa 3.6 (``RemoteAction._action_call_format``, rasa/core/actions/action.py)
sends the whole tracker with every custom action call: every event of the
session, each user message with its full parse data (intent and
response-selector rankings). Encoding it as JSON took 8.5% of a Rasa server's
CPU time under load (py-spy, bench/README.md, "Cost of a message"), growing
with the conversation, and the action server decoded it again. Deskmate's
actions read the latest message, the slots, the sender id and, for a request
for a person, the intent of the visitor's message before the latest one
(actions/handoff.py, ``previous_user_intent``); nothing reads older events.
So the call carries the state Rasa computes from the whole tracker
(``current_state``: slots, latest message, paused, active loop, latest
action) with the events of the last ``RECENT_USER_TURNS`` user turns only.
The rest of the call (next action, sender id, version, domain unless
selective) is Rasa's.

Installed when Rasa loads the deskmate channel (bot/rasa_plugins/channel.py),
i.e. only in the Rasa server; pinned Rasa (3.6.21) is what this replaces.
"""
from __future__ import annotations

from typing import Any, Dict, List, Sequence, Text

import rasa
from rasa.core.actions.action import RemoteAction
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import Event, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity

# Rasa's own, kept for comparison (tests/test_action_call.py); taken before ``install`` can replace it.
RASAS_ACTION_CALL_FORMAT = RemoteAction._action_call_format

# The latest user message and the one before it (actions/handoff.py reads the earlier one's intent).
RECENT_USER_TURNS = 2


def recent_events(events: Sequence[Event], user_turns: int = RECENT_USER_TURNS) -> List[Event]:
    """The events from the ``user_turns``-th last user message (``UserUttered``) on, in order; all of
    them when the conversation has fewer user messages. ``user_turns`` >= 1."""
    seen = 0
    for index in range(len(events) - 1, -1, -1):
        if isinstance(events[index], UserUttered):
            seen += 1
            if seen == user_turns:
                return list(events[index:])
    return list(events)


def action_call_format(self: RemoteAction, tracker: DialogueStateTracker, domain: Domain) -> Dict[Text, Any]:
    """``RemoteAction._action_call_format`` with only the recent events: the JSON body of a call to the
    action server (next_action, sender_id, tracker state, version, and the domain as Rasa decides)."""
    state = tracker.current_state(EventVerbosity.NONE)
    state["events"] = [event.as_dict() for event in recent_events(list(tracker.events))]
    body: Dict[Text, Any] = {
        "next_action": self._name,
        "sender_id": tracker.sender_id,
        "tracker": state,
        "version": rasa.__version__,
    }
    if not self._is_selective_domain_enabled() or domain.does_custom_action_explicitly_need_domain(self.name()):
        body["domain"] = domain.as_dict()
    return body


def install() -> None:
    """Make Rasa's remote actions send ``action_call_format``'s body (idempotent)."""
    setattr(RemoteAction, "_action_call_format", action_call_format)


__all__ = ["RASAS_ACTION_CALL_FORMAT", "RECENT_USER_TURNS", "action_call_format", "install", "recent_events"]
