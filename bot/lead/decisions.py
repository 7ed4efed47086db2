"""Carrying out a lead's decision on a missed message: edit kb/ or data/nlu/ if asked, then record it.

A refused edit (a duplicate, entity syntax, an unknown article or intent)
raises before anything is recorded; a recorded decision is never made twice.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bot.lead.kb_edits import add_article_question
from bot.lead.nlu_edits import add_intent_example
from bot.lead.training_edits import clean_example
from bot.protocol import InboxAction, Sender
from bot.public_paths import public_message, roots_of
from bot.store.database import Store
from bot.store.inbox import AlreadyDecidedError, DecisionRecord, MessageNotFoundError, decision_for, record_decision
from bot.store.messages import get_message

SUMMARIES = {InboxAction.NEW_ARTICLE: "Marked: needs a new article.", InboxAction.DISMISS: "Dismissed."}


@dataclass(frozen=True)
class Workspace:
    """Where a decision may write: the knowledge base and the NLU data (``project_root`` for messages)."""

    kb_dir: Path
    nlu_dir: Path
    project_root: Path

    def display(self, path: Path) -> str:
        """``path`` as the lead reads it ("kb/billing/x.md"), never where it lies on the server."""
        roots = roots_of([(self.kb_dir, "kb"), (self.nlu_dir, "data/nlu"), (self.project_root, "")])
        return public_message(str(path), roots)


def decide(
    store: Store, workspace: Workspace, message_id: int, action: InboxAction, target: str, text: str,
    lead: str, now: datetime,
) -> tuple[DecisionRecord, str]:
    """Carry out the decision; the recorded decision and a one-line summary for the lead.

    Raises MessageNotFoundError (no such visitor message), AlreadyDecidedError,
    a TrainingDataEditError for a refused edit (DuplicateExampleError among
    them), ValueError for a bad target, StoreError when the database fails.
    """
    message = get_message(store, message_id)
    if message is None or message.sender != Sender.VISITOR.value:
        raise MessageNotFoundError(f"there is no visitor message {message_id}")
    earlier = decision_for(store, message_id)
    if earlier is not None:
        raise AlreadyDecidedError(f"{earlier.decided_by} already decided this message ({earlier.action})")
    text = clean_example(text)  # the words a lead keeps, for every action: length and characters checked
    summary = SUMMARIES.get(action, "")
    if action is InboxAction.ARTICLE:
        path = add_article_question(workspace.kb_dir, target, text)
        summary = f"Added to {workspace.display(path)}. Retrain to use it."
    elif action is InboxAction.INTENT:
        path = add_intent_example(workspace.nlu_dir, target, text)
        summary = f"Added to intent {target} in {workspace.display(path)}. Retrain to use it."
    decision = record_decision(store, message_id, action.value, target or None, text, lead, now)
    return decision, summary
