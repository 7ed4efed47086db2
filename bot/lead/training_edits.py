"""What edits of the training data (kb/ articles, data/nlu/ intents) share.

A support lead turns a missed message into a new phrasing of an article or a
new example of an intent. Each edit is one added line in a YAML file: the
text is cleaned and checked first, the file is changed with ruamel.yaml's
round trip in the file's own indentation, and the result is refused unless
it differs from the old file by exactly that line, so `git diff` reads
cleanly. Writes hold a lock on the data directory and replace the file
atomically.
"""
from __future__ import annotations

import difflib
import fcntl
import io
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Sequence, Tuple

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from bot.kb.check import normalise_phrasing
from bot.settings import Settings

# Indentation styles tried, as (mapping, sequence, offset): mappings indented
# by 2 or 4, list dashes at the parent key's column (`key:\n- item`, Rasa's
# data files) or indented by 2 (`key:\n  - item`, kb/ front matter) or 4.
INDENT_STYLES: Tuple[Tuple[int, int, int], ...] = tuple(
    (mapping, offset + 2, offset) for mapping in (2, 4) for offset in (0, 2, 4)
)
# Wide enough that a long phrasing is never folded over several lines.
LINE_WIDTH = 1_000_000


class TrainingDataEditError(ValueError):
    """A phrasing or example cannot be added; the message says why."""


class InvalidExampleError(TrainingDataEditError):
    """The text is empty or longer than a visitor's message may be."""


class UnsafeExampleError(TrainingDataEditError):
    """The text would not be read back as the same plain text."""


class DuplicateExampleError(TrainingDataEditError):
    """The text is already in the training data."""


class UnknownTargetError(TrainingDataEditError):
    """No article or intent has that name."""


class UneditableFileError(TrainingDataEditError):
    """The file cannot be read, or cannot take the line without other changes."""


# Rasa reads `[text](entity)`, `[text]{"entity": ...}` and `[text][{...}]` as
# entity annotations; each needs one of these pairs, so text without them is
# read as written.
ENTITY_MARKERS = ("](", "]{", "][")


def refuse_entity_syntax(example: str) -> None:
    """Refuse (UnsafeExampleError) a phrasing that looks like an entity annotation: a lead's edit adds
    the visitor's words as written, to articles and intents alike."""
    markers = [marker for marker in ENTITY_MARKERS if marker in example]
    if markers:
        raise UnsafeExampleError(
            f"'{example}' contains {' and '.join(repr(m) for m in markers)}, which Rasa reads as an entity annotation"
        )


def clean_example(text: str, max_chars: Optional[int] = None) -> str:
    """``text`` stripped, with every run of whitespace (newlines too) made one space."""
    cleaned = " ".join(str(text).split())
    if not cleaned:
        raise InvalidExampleError("the text is empty")
    limit = Settings().max_message_chars if max_chars is None else max_chars
    if len(cleaned) > limit:
        raise InvalidExampleError(f"the text is {len(cleaned)} characters; the most a message may have is {limit}")
    # YAML cannot hold these in a block scalar; such text never comes from a
    # person typing, so it is refused rather than escaped.
    unprintable = sorted({f"U+{ord(char):04X}" for char in cleaned if not yaml_printable(char)})
    if unprintable:
        raise UnsafeExampleError(f"the text contains unprintable characters ({', '.join(unprintable)})")
    return cleaned


def yaml_printable(char: str) -> bool:
    """Whether YAML may hold ``char`` as it is (the spec's c-printable, less the byte-order mark)."""
    code = ord(char)
    return (
        0x20 <= code <= 0x7E
        or code == 0x85
        or 0xA0 <= code <= 0xD7FF
        or (0xE000 <= code <= 0xFFFD and code != 0xFEFF)
        or 0x10000 <= code <= 0x10FFFF
    )


def refuse_duplicate(text: str, existing: Iterable[Tuple[str, str]]) -> None:
    """Raise DuplicateExampleError when ``text`` matches one of (text, where it is).

    Matching ignores case, spacing and end punctuation, as `bot kb check` does.
    """
    key = normalise_phrasing(text)
    for other, where in existing:
        if normalise_phrasing(other) == key:
            raise DuplicateExampleError(f"'{text}' is already there as '{other}' ({where})")


# Up to this many known names are listed in full; beyond, only the closest ones (a lead reads the message).
LISTED_TARGETS = 12


def unknown_target(kind: str, name: str, known: Sequence[str]) -> UnknownTargetError:
    """The error for an unknown article or intent: naming the known ones when there are at most
    ``LISTED_TARGETS``, else the (up to 3) closest by spelling (``difflib``) and how many others exist."""
    names = sorted(known)
    if len(names) <= LISTED_TARGETS:
        return UnknownTargetError(f"no {kind} '{name}'; known {kind}s: {', '.join(names) or 'none'}")
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    return UnknownTargetError(
        f"no {kind} '{name}'; {hint}{len(names)} {kind}s exist (it may have been renamed or deleted: "
        "reload the page for the current list)"
    )


@contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``directory`` across processes.

    The directory, not the file, is locked: the file is replaced by a new
    inode on every write, and a lock on the whole tree also makes the
    duplicate checks across files consistent.
    """
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def read_text(path: Path) -> str:
    """The file's exact text (no newline translation), or UneditableFileError."""
    try:
        return path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UneditableFileError(f"{path}: cannot be read as UTF-8 text ({error})") from None


def round_trip_yaml(path: Path, text: str) -> YAML:
    """A ruamel round-trip YAML that writes ``text`` back unchanged.

    Tries the usual indentation styles and returns the first that reproduces
    the file byte for byte, so an edit cannot restyle the rest of it.
    """
    for mapping, sequence, offset in INDENT_STYLES:
        yaml = YAML(typ="rt")
        yaml.preserve_quotes = True
        yaml.width = LINE_WIDTH
        yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
        try:
            if dump_yaml(yaml, yaml.load(text)) == text:
                return yaml
        except YAMLError as error:
            raise UneditableFileError(f"{path}: not valid YAML ({error})") from None
    raise UneditableFileError(f"{path}: its YAML layout cannot be kept by an automatic edit; add the line by hand")


def dump_yaml(yaml: YAML, data: Any) -> str:
    """``data`` written by ``yaml`` as text."""
    stream = io.StringIO()
    yaml.dump(data, stream)
    return stream.getvalue()


def replace_file(path: Path, old: str, new: str) -> None:
    """Write ``new`` over ``path`` atomically, if it is ``old`` plus exactly one line.

    Call with the directory lock held.
    """
    old_lines = old.splitlines(keepends=True)
    new_lines = new.splitlines(keepends=True)
    index = next((i for i, (a, b) in enumerate(zip(old_lines, new_lines)) if a != b), len(old_lines))
    if len(new_lines) != len(old_lines) + 1 or new_lines[:index] + new_lines[index + 1 :] != old_lines:
        raise UneditableFileError(f"{path}: the edit would change more than one added line; add the line by hand")
    write_atomically(path, new)


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``: readers see the old file or the new, never half of one."""
    mode = path.stat().st_mode & 0o7777
    fd, scratch = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(text.encode("utf-8"))
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(scratch, mode)  # mkstemp creates 0600; keep the file's own mode
        os.replace(scratch, path)
    except BaseException:
        if os.path.exists(scratch):
            os.unlink(scratch)
        raise
