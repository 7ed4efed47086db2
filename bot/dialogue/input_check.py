"""Messages the bot cannot sensibly read: empty, too long, or without words."""
from __future__ import annotations

import enum
import unicodedata
from typing import Optional


class InputProblem(str, enum.Enum):
    """Why a message was not read as a question."""

    EMPTY = "empty"
    TOO_LONG = "too_long"
    NO_WORDS = "no_words"


def _has_word_character(text: str) -> bool:
    # Letters or digits in any script count; emoji, symbols and controls don't.
    return any(unicodedata.category(char)[0] in ("L", "N") for char in text)


def input_problem(text: Optional[str], max_chars: int) -> Optional[InputProblem]:
    """The problem with ``text``, or None when it can be read as a question."""
    if text is None or not text.strip():
        return InputProblem.EMPTY
    if len(text) > max_chars:
        return InputProblem.TOO_LONG
    if not _has_word_character(text):
        return InputProblem.NO_WORDS
    return None
