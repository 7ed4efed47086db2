"""Reading the project's YAML files (policy, demo customers, floors, eval cases) with one kind of error message."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Sequence, Type

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError


def read_yaml(path: Path, error: Type[Exception], what: str) -> Any:
    """The parsed content of the YAML file at ``path`` (safe loader; None for an empty file).

    Raises ``error`` (the caller's own type) naming the file and ``what`` it is
    ("the support policy") when it cannot be read or is not valid YAML.
    """
    try:
        return YAML(typ="safe").load(Path(path).read_text(encoding="utf-8"))
    except OSError as problem:
        raise error(f"{path}: cannot read {what}: {problem.strerror or problem}") from problem
    except (YAMLError, ValueError) as problem:
        raise error(f"{path}: not valid YAML: {problem}") from problem


def read_yaml_mapping(path: Path, error: Type[Exception], what: str, keys: Sequence[str]) -> Dict[Any, Any]:
    """The YAML file at ``path`` as a mapping with only ``keys`` in it (some may be missing).

    Raises ``error`` naming the file: unreadable, not YAML, not a mapping
    ("expected 'a' and 'b'"), or with unknown keys.
    """
    raw = read_yaml(path, error, what)
    if not isinstance(raw, dict):
        raise error(f"{path}: expected {' and '.join(repr(k) for k in keys)}")
    unknown = set(raw) - set(keys)
    if unknown:
        raise error(f"{path}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    return raw
