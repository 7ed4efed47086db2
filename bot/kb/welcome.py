"""The chat's welcome on a new conversation: a greeting and starter questions, from kb/welcome.yml."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from bot.yaml_files import read_yaml_mapping

WELCOME_FILE = "welcome.yml"
MAX_GREETING_CHARS = 300
MAX_STARTERS = 6
MAX_STARTER_CHARS = 80


class WelcomeError(ValueError):
    """kb/welcome.yml cannot be read or breaks a rule (the message names the file and the rule)."""


@dataclass(frozen=True)
class Welcome:
    """``greeting`` (1-300 characters) and ``starters`` (0-6 questions of 1-80 characters)."""

    greeting: str
    starters: Tuple[str, ...] = ()

    def as_json(self) -> Dict[str, Any]:
        """``{"greeting": str, "starters": [str, ...]}``: the widget's ``deskmate_welcome`` event."""
        return {"greeting": self.greeting, "starters": list(self.starters)}


def load_welcome(path: Path) -> Welcome:
    """Read and check the welcome file. Raises WelcomeError (unreadable, not YAML, or a rule broken)."""
    raw = read_yaml_mapping(path, WelcomeError, "the chat's welcome", ("greeting", "starters"))
    greeting = raw.get("greeting")
    if not isinstance(greeting, str) or not greeting.strip() or len(greeting) > MAX_GREETING_CHARS:
        raise WelcomeError(f"{path}: 'greeting' must be text of 1 to {MAX_GREETING_CHARS} characters")
    starters = raw.get("starters") or []
    if not isinstance(starters, list) or len(starters) > MAX_STARTERS:
        raise WelcomeError(f"{path}: 'starters' must be a list of at most {MAX_STARTERS} questions")
    checked: List[str] = []
    for index, starter in enumerate(starters, 1):
        if not isinstance(starter, str) or not starter.strip() or len(starter) > MAX_STARTER_CHARS:
            raise WelcomeError(f"{path}: starter {index} must be text of 1 to {MAX_STARTER_CHARS} characters")
        if starter.strip().casefold() in {known.casefold() for known in checked}:
            raise WelcomeError(f"{path}: starter {index} repeats an earlier one")
        checked.append(starter.strip())
    return Welcome(greeting.strip(), tuple(checked))


class WelcomeFile:
    """The welcome file, read again when it changes (a lead's edit shows on the next new conversation).

    ``current()`` returns None when the file is missing or broken (the widget then keeps its own
    short greeting; `python -m bot kb check` names the problem).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: Optional[Tuple[float, int]] = None
        self._welcome: Optional[Welcome] = None

    def current(self) -> Optional[Welcome]:
        try:
            stat = self.path.stat()
        except OSError:
            return None
        stamp = (stat.st_mtime, stat.st_size)
        if stamp != self._seen:
            self._seen = stamp
            try:
                self._welcome = load_welcome(self.path)
            except WelcomeError:
                self._welcome = None
        return self._welcome
