"""Eval cases (tests/eval/*.yml) and what counts as passing one."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

from ruamel.yaml import YAML

KINDS = ("article", "intent", "handoff", "none")
USERS = ("anonymous", "free", "standard", "premium")


class EvalFileError(ValueError):
    """An eval file is not in the expected format."""


@dataclass(frozen=True)
class Expectation:
    """One acceptable outcome: ``article:<id>``, ``intent:<name>``, ``handoff`` or ``none``."""

    kind: str
    value: Optional[str] = None

    @classmethod
    def parse(cls, text: str) -> "Expectation":
        """Read one alternative of an ``expect`` field."""
        kind, _, value = text.strip().partition(":")
        if kind not in KINDS:
            raise EvalFileError(f"unknown expectation '{text}' (use article:<id>, intent:<name>, handoff or none)")
        if kind in ("article", "intent") and not value:
            raise EvalFileError(f"'{text}' needs a name after the colon")
        if kind in ("handoff", "none") and value:
            raise EvalFileError(f"'{text}' takes no value")
        return cls(kind, value or None)

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}" if self.value else self.kind


@dataclass(frozen=True)
class Outcome:
    """What the bot did with one message."""

    intent: Optional[str]
    article: Optional[str]
    handoff: bool


@dataclass(frozen=True)
class EvalCase:
    """A message sent in a new conversation and the outcomes that count as right."""

    text: str
    expect: Tuple[Expectation, ...]
    user: str = "anonymous"

    @property
    def kind(self) -> str:
        """The kind of the first alternative, under which the case is counted."""
        return self.expect[0].kind

    @property
    def expected_articles(self) -> Tuple[str, ...]:
        """Articles that are right answers to this case (possibly none)."""
        return tuple(e.value for e in self.expect if e.kind == "article" and e.value)

    def passes(self, outcome: Outcome) -> bool:
        """Whether ``outcome`` meets any alternative."""
        return any(self._meets(expectation, outcome) for expectation in self.expect)

    def is_wrong_answer(self, outcome: Outcome) -> bool:
        """An article was given that this case does not accept.

        Where a handoff is expected and happened, an article shown while the
        agent is on the way is not the bot answering in the person's place.
        """
        if outcome.handoff and any(e.kind == "handoff" for e in self.expect):
            return False
        return outcome.article is not None and outcome.article not in self.expected_articles

    @staticmethod
    def _meets(expectation: Expectation, outcome: Outcome) -> bool:
        if expectation.kind == "article":
            return outcome.article == expectation.value
        if expectation.kind == "intent":
            return outcome.intent == expectation.value and outcome.article is None
        if expectation.kind == "handoff":
            return outcome.handoff
        return outcome.article is None


def load_cases(path: Path) -> List[EvalCase]:
    """Read an eval file: ``cases:`` with ``text``, ``expect`` and optional ``user``."""
    data = YAML(typ="safe").load(path.read_text(encoding="utf-8")) or {}
    raw_cases = data.get("cases") if isinstance(data, dict) else None
    if not isinstance(raw_cases, list) or not raw_cases:
        raise EvalFileError(f"{path}: expected a non-empty 'cases:' list")
    cases: List[EvalCase] = []
    for number, raw in enumerate(raw_cases, start=1):
        if not isinstance(raw, dict) or "text" not in raw or not raw.get("expect"):
            raise EvalFileError(f"{path}: case {number} needs 'text' and 'expect'")
        user = str(raw.get("user") or "anonymous")
        if user not in USERS:
            raise EvalFileError(f"{path}: case {number}: unknown user '{user}' (use {', '.join(USERS)})")
        try:
            expect = tuple(Expectation.parse(part) for part in str(raw["expect"]).split("|"))
        except EvalFileError as error:
            raise EvalFileError(f"{path}: case {number}: {error}") from None
        cases.append(EvalCase(text=str(raw["text"]), expect=expect, user=user))
    return cases
