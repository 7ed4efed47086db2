"""Add an example to an NLU intent: one more line in its ``examples: |`` block in data/nlu/."""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Tuple

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import LiteralScalarString

from bot.lead.training_edits import (
    UneditableFileError,
    UnsafeExampleError,
    clean_example,
    refuse_entity_syntax,
    dump_yaml,
    locked,
    read_text,
    refuse_duplicate,
    replace_file,
    round_trip_yaml,
    unknown_target,
)

NLU_PATTERNS = ("*.yml", "*.yaml")
@dataclass(frozen=True)
class IntentBlock:
    """One ``- intent:`` item of a data/nlu file."""

    path: Path
    intent: str
    examples: Any  # the ``examples`` value: a literal block (str) when editable


def nlu_paths(nlu_dir: Path) -> List[Path]:
    """Every YAML file under nlu_dir, in a stable order."""
    return sorted({path for pattern in NLU_PATTERNS for path in nlu_dir.rglob(pattern) if path.is_file()})


def _intent_items(data: Any) -> List[CommentedMap]:
    items = data.get("nlu") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return []
    return [item for item in items if isinstance(item, dict) and item.get("intent")]


def _intent_blocks(nlu_dir: Path) -> List[IntentBlock]:
    blocks: List[IntentBlock] = []
    for path in nlu_paths(nlu_dir):
        try:
            data = YAML(typ="rt").load(read_text(path))
        except YAMLError as error:
            raise UneditableFileError(f"{path}: not valid YAML ({error})") from None
        blocks.extend(IntentBlock(path, str(item["intent"]), item.get("examples")) for item in _intent_items(data))
    return blocks


def intent_choices(nlu_dir: Path) -> List[str]:
    """The intents named in data/nlu files, sorted."""
    return sorted({block.intent for block in _intent_blocks(nlu_dir)})


def rasa_examples(path: Path, text: str) -> List[Tuple[str, str, str]]:
    """(intent, plain text, entities as JSON) of each example in an NLU file's text, as Rasa reads it."""
    # Imported here: only an edit needs Rasa's reader, not the drop-downs.
    from rasa.shared.exceptions import YamlException
    from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader

    try:
        data = RasaYAMLReader().reads(text)
    except YamlException as error:
        raise UneditableFileError(f"{path}: Rasa cannot read it ({error})") from None
    return [
        (m.get("intent"), m.get("text"), json.dumps(m.get("entities") or [], sort_keys=True))
        for m in data.training_examples
    ]


def _appended(block: str, example: str) -> LiteralScalarString:
    """The literal block with ``- example`` after its last line; its trailing newlines (chomping) kept."""
    body = block.rstrip("\n")
    tail = block[len(body) :]
    return LiteralScalarString(f"{body}\n- {example}{tail}" if body else f"- {example}{tail}")


def _with_example(path: Path, text: str, intent: str, example: str) -> str:
    """The file's text with ``example`` appended to the first block of ``intent``."""
    yaml = round_trip_yaml(path, text)
    data = yaml.load(text)
    item = next(
        item
        for item in _intent_items(data)
        if str(item["intent"]) == intent and isinstance(item.get("examples"), LiteralScalarString)
    )
    item["examples"] = _appended(str(item["examples"]), example)
    return dump_yaml(yaml, data)


def _check_read_back(path: Path, old: str, new: str, intent: str, example: str) -> None:
    """Refuse unless Rasa reads ``new`` as ``old`` plus ``example`` as plain text with no entities."""
    before = Counter(rasa_examples(path, old))
    after = Counter(rasa_examples(path, new))
    if after - before != Counter([(intent, example, "[]")]) or before - after:
        raise UnsafeExampleError(f"{path}: Rasa would not read '{example}' back as plain text under '{intent}'")


def add_intent_example(nlu_dir: Path, intent: str, text: str) -> Path:
    """Append ``text`` to the examples of ``intent``; returns the file written.

    The example goes into the first file (in path order) that has the intent.
    Refused (a TrainingDataEditError) when the text is empty, too long or
    looks like an entity annotation, when any intent already has it (Rasa's
    `data validate` flags an example under two intents), or when the intent
    is unknown.
    """
    example = clean_example(text)
    refuse_entity_syntax(example)
    with locked(nlu_dir):
        blocks = _intent_blocks(nlu_dir)
        targets = [block for block in blocks if block.intent == intent]
        if not targets:
            raise unknown_target("intent", intent, sorted({block.intent for block in blocks}))
        editable = [block for block in targets if isinstance(block.examples, LiteralScalarString)]
        if not editable:
            raise UneditableFileError(f"intent '{intent}' has no 'examples: |' block to add to ({targets[0].path})")
        path = editable[0].path
        old = read_text(path)
        files = sorted({block.path for block in blocks})
        existing = ((known, f"intent '{name}', {p}") for p in files for name, known, _ in rasa_examples(p, read_text(p)))
        refuse_duplicate(example, existing)
        new = _with_example(path, old, intent, example)
        _check_read_back(path, old, new, intent, example)
        replace_file(path, old, new)
    return path
