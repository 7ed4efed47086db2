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


# Kept: line breaks and tabs; every other control character (NUL included: PostgreSQL refuses it
# in text) goes. Lone UTF-16 surrogates (half of a cut emoji) cannot be stored or encoded.
_KEPT_CONTROLS = {"\n", "\t"}


def clean_text(text: str) -> str:
    """A visitor's text made safe to store and process, at the door (widget socket and JSON API alike).

    Lone surrogates become U+FFFD (the replacement character), CR LF and CR
    become LF, other control characters (C0, DEL, C1: NUL, BEL, ESC, ...) are
    removed, and the text is put in Unicode NFC form. Everything else, emoji,
    right-to-left and zero-width characters included, is kept as typed.
    """
    # UTF-16 round trip: a surrogate pair becomes its character, a lone surrogate U+FFFD.
    text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    kept = (char for char in text if char in _KEPT_CONTROLS or unicodedata.category(char) != "Cc")
    return unicodedata.normalize("NFC", "".join(kept))
